"""The FBC and stopping figures show what the run's stop rule watched."""

from __future__ import annotations

from napari_dip_spectral import degrade, restore
from napari_dip_spectral.plots import stopping_figure, stopping_plot

from .conftest import smooth_image


def _labels(fig):
    return [line.get_label() for line in fig.axes[0].get_lines()]


def test_the_stopping_plot_shows_the_signal_of_the_rule_that_was_used():
    noisy = degrade(smooth_image(32), "denoise", seed=0).image
    ours = restore(noisy, iterations=30, channels=8, device="cpu")
    paper = restore(noisy, iterations=30, channels=8, device="cpu", profile="paper")
    assert "data term / noise level" in _labels(stopping_figure(ours.history, ours.stop_iteration))
    assert "blur / sharpness ratio" in _labels(stopping_figure(paper.history, paper.stop_iteration))
    image = stopping_plot(ours.history, ours.stop_iteration)
    assert image.ndim == 3 and image.shape[2] == 3 and image.std() > 0
