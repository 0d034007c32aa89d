"""Colour planes go through the passes after the fit in an orthonormal opponent space: the
rotation keeps white noise white with its sigma, only RGB-like layouts take it, and a grey
scene comes back greyer and closer to the truth than with the passes in red, green, blue."""

from __future__ import annotations

import numpy as np
import pytest

from napari_dip_spectral import restore
from napari_dip_spectral.engine.layout import Layout
from napari_dip_spectral.refinement.opponent import from_opponent, to_opponent


def test_the_rotation_is_undone_and_keeps_white_noise_white_with_its_sigma():
    rng = np.random.default_rng(0)
    planes = rng.random((2, 3, 16, 20)).astype(np.float32)
    back = from_opponent(to_opponent(planes))
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, planes, atol=1e-6)
    noise = rng.normal(0, 0.1, (1, 3, 256, 256))
    opp = to_opponent(noise)[0]
    assert np.std(opp, axis=(1, 2)) == pytest.approx([0.1, 0.1, 0.1], rel=0.03)
    # and the opponent channels' noise is uncorrelated
    assert abs(np.corrcoef(opp.reshape(3, -1))[np.triu_indices(3, 1)]).max() < 0.02


@pytest.mark.parametrize(
    ("axes", "shape", "joint", "colour"),
    [
        ("YXC", (8, 8, 3), "C", True),
        ("YXS", (8, 8, 3), "S", True),
        ("TYXS", (2, 8, 8, 3), "S", True),
        ("CYX", (3, 8, 8), "C", False),  # three stains, not colours
        ("YXC", (8, 8, 4), "C", False),
        ("ZYX", (3, 8, 8), "Z", False),  # planes of a stack fitted as channels
        ("YXC", (8, 8, 3), None, False),  # channels fitted one by one
    ],
)
def test_only_rgb_layouts_are_colour_planes(axes, shape, joint, colour):
    assert Layout(axes, shape, joint).colour is colour


def _restore_grey_scene(monkeypatch, opponent: bool):
    y, x = np.mgrid[0:48, 0:48]
    grey = 0.3 + 0.4 * ((x // 12 + y // 12) % 2) + 0.2 * np.sin(y / 5.0)
    clean = np.repeat(grey[..., None], 3, axis=2)
    noisy = (clean + np.random.default_rng(1).normal(0, 0.1, clean.shape)).astype(np.float32)
    if not opponent:
        monkeypatch.setattr(Layout, "colour", property(lambda self: False))
    result = restore(noisy, channels=8, iterations=60, seed=0, device="cpu")
    monkeypatch.undo()
    return result.image, clean


def test_a_grey_scene_comes_back_greyer_and_closer_with_the_opponent_space(monkeypatch):
    opp, clean = _restore_grey_scene(monkeypatch, opponent=True)
    rgb, _ = _restore_grey_scene(monkeypatch, opponent=False)

    def colour_energy(image):  # what the differences between channels hold
        return np.mean((image[..., 0] - image[..., 1]) ** 2 + (image[..., 1] - image[..., 2]) ** 2)

    assert colour_energy(opp) < 0.7 * colour_energy(rgb)  # 0.46 when written
    assert np.mean((opp - clean) ** 2) < np.mean((rgb - clean) ** 2)
