"""Benchmarks of napari-dip-spectral: quality against the paper and classical filters, speed,
stability of long runs. Each module runs from the repository root as
``python -m benchmarks.<name>`` (``--help`` lists its options); ``common`` holds what they
share (test images, PSNR/SSIM, timing, tables)."""
