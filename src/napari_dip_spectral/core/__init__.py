"""The method itself: torch and numpy only (no napari, Qt, dask or file access)."""
