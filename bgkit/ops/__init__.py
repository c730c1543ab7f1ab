"""Image operations on a frame and its segmentation: blurs, compositing, edge refinement, temporal smoothing.

numpy in and out at the public functions (scikit-image style); each has a torch core that the
pipeline calls with tensors on the model's device.
"""
