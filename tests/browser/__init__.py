"""Browser tests (JupyterLab in headless Chromium); the harness is in conftest.py."""
