"""Whole-file jobs through the pipeline: video files (and folders of frames), and batches of files."""
