"""Images and video in and out, and outputs written safely (temporary name, then moved into place)."""
