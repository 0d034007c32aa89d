"""Shared fixtures: small synthetic images and the path to the paper's test images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def settings_folder(tmp_path_factory, monkeypatch) -> Path:
    """Where the widgets keep their last settings during a test: a fresh folder, never the
    user's own config folder (widgets write there on Run and when they close)."""
    folder = tmp_path_factory.mktemp("settings")
    monkeypatch.setenv("NAPARI_DIP_SPECTRAL_CONFIG_DIR", str(folder))
    return folder


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"paper test images not found at {SHARED_DATA}")
    return SHARED_DATA


def smooth_image(size: int = 32, colour: bool = False, seed: int = 0) -> np.ndarray:
    """A smooth synthetic test image in [0.1, 0.9] (sums of low-frequency waves)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    planes = []
    for _ in range(3 if colour else 1):
        img = np.zeros((size, size))
        for _ in range(4):
            fy, fx, phase = rng.uniform(0.5, 3, 2).tolist() + [rng.uniform(0, 6.28)]
            img += np.sin(2 * np.pi * (fy * yy + fx * xx) + phase)
        planes.append(0.5 + 0.1 * img)
    img = np.stack(planes, -1) if colour else planes[0]
    return np.clip(img, 0.1, 0.9).astype(np.float32)


def dark_sparse_image(size: int = 64, seed: int = 0):
    """A dark fluorescence-like image (few bright blobs on a dim background) and a
    Poisson-Gaussian noisy observation of it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    img = np.full((size, size), 0.08)
    for _ in range(max(2, size // 20)):
        cy, cx = rng.uniform(6, size - 6, 2)
        r = rng.uniform(2, 4)
        img += 0.8 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    img = np.clip(img, 0, 1)
    noisy = rng.poisson(img * 60) / 60 + rng.normal(0, 0.02, img.shape)
    return img.astype(np.float32), noisy.astype(np.float32)
