"""Tests of the napari face (real viewer under Xvfb)."""
