"""The engine under every face: one job that checks the input, lays it out as planes, fits
the noise model, plans batches and tiles, runs the fits and returns the result."""
