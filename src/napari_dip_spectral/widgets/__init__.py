"""The napari face: one dock widget per task, its worker, layer conversion and sample data.

Imports napari and Qt; torch only when a widget is built or a run starts.
"""
