"""The noise model of the data: the Poisson-Gaussian fit, the variance-stabilising transform,
hot and saturated pixels, and the fit's data term."""
