"""The live camera: the frame protocol, the kernel-side processor, the widget and its page code.

``LiveBackground`` (in :mod:`bgkit.live.widget`, also ``bgkit.widgets.LiveBackground``) is the
notebook widget; :class:`bgkit.live.processor.LiveProcessor` its kernel side;
:mod:`bgkit.live.protocol` the messages; :mod:`bgkit.live.jupyter_compat` every use of
Jupyter internals; :mod:`bgkit.live.server` the Jupyter server's part.
"""
