"""Benchmark cases built from the paper's test images (layout of ``shared/data/README.md``).

Every case holds the clean image and its degraded observation, both float32 in [0, 1]. A
missing folder or file is reported and skipped, so any folder with the same layout (or a
subset of it) works as ``--data``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_dip_spectral.degradations import degrade

from .common import read_image

DENOISE_SIGMA = 25 / 255
MULTIPLE = 32  # the authors crop every image to a multiple of 32

# file name -> the name used in method.md section 8.2 (F-1)
DENOISE_FILES = {
    "image_Baboon512rgb.png": "Baboon",
    "image_F16_512rgb.png": "F16",
    "image_House256rgb.png": "House",
    "image_Lena512rgb.png": "Lena",
    "image_Peppers512rgb.png": "Peppers",
    "kodim01.png": "Kodim01",
    "kodim02.png": "Kodim02",
    "kodim03.png": "Kodim03",
    "kodim12.png": "Kodim12",
}
CLASSIC5 = ("baboon", "barbara", "boats", "lena", "peppers")
BERNOULLI = (
    "Cameraman256",
    "house",
    "montage",
    "peppers256",
    "Lena512",
    "barbara",
    "boat",
    "couple",
    "fingerprint",
    "hill",
    "man",
)
REGIONS = ("library", "vase")
SR_SETS = ("CSet5", "CSet14")


@dataclass
class Case:
    """One benchmark image: ``observed`` is what the methods see, ``clean`` the ground truth."""

    task: str
    group: str  # rows of one summary table, e.g. "deblock q10"
    name: str
    clean: np.ndarray
    observed: np.ndarray
    mask: np.ndarray | None = None  # inpaint: True = observed
    factor: int | None = None  # super_resolution
    params: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.group}/{self.name}"


@dataclass(frozen=True)
class Selection:
    """Which images, and how they are shrunk: ``shrink_to`` = integer downscaling so the
    shorter side is about that many pixels (0 = none), then a centre crop of ``crop`` pixels
    (0 = none), then a crop to a multiple of 32 (and of the SR factor)."""

    denoise: tuple[str, ...] = tuple(DENOISE_FILES.values())
    deblock: tuple[str, ...] = CLASSIC5
    qualities: tuple[int, ...] = (10, 20, 30)
    inpaint: tuple[str, ...] = BERNOULLI + REGIONS
    super_resolution: tuple[str, ...] = ("CSet5/*", "CSet14/*")
    factors: tuple[int, ...] = (4, 8)
    enhance: bool = True
    shrink_to: int = 0
    crop: int = 0


def _unit(arr: np.ndarray) -> np.ndarray:
    return arr.astype(np.float32) / 255


def _shrink(img: np.ndarray, shrink_to: int, order: int) -> np.ndarray:
    from skimage.transform import resize

    factor = min(img.shape[:2]) // shrink_to if shrink_to else 1
    if factor <= 1:
        return img
    shape = (img.shape[0] // factor, img.shape[1] // factor) + img.shape[2:]
    out = resize(img, shape, order=order, anti_aliasing=order > 0, preserve_range=True)
    return out.astype(img.dtype)


def _centre(img: np.ndarray, h: int, w: int) -> np.ndarray:
    top, left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return img[top : top + h, left : left + w]


def _fit(img: np.ndarray, sel: Selection, multiple: int = MULTIPLE, order: int = 1) -> np.ndarray:
    """Shrink, centre-crop and crop to ``multiple``; ``order=0`` for masks."""
    img = _shrink(img, sel.shrink_to, order)
    h, w = img.shape[:2]
    if sel.crop:
        h, w = min(h, sel.crop), min(w, sel.crop)
    h, w = max(multiple, h - h % multiple), max(multiple, w - w % multiple)
    return _centre(img, min(h, img.shape[0]), min(w, img.shape[1]))


def _skip(message: str) -> None:
    print(f"[skip] {message}")


def denoise_cases(root: Path, sel: Selection) -> list[Case]:
    folder = root / "denoising"
    if not folder.is_dir():
        _skip(f"denoising: no folder {folder}")
        return []
    cases = []
    for file, name in DENOISE_FILES.items():
        if name not in sel.denoise:
            continue
        if not (folder / file).is_file():
            _skip(f"denoising: missing {folder / file}")
            continue
        clean = _fit(_unit(read_image(folder / file)), sel)
        noisy = degrade(clean, "denoise", sigma=DENOISE_SIGMA, seed=0).image
        cases.append(Case("denoise", "denoise sigma=25", name, clean, noisy, params={"sigma": DENOISE_SIGMA}))
    return cases


def deblock_cases(root: Path, sel: Selection) -> list[Case]:
    folder = root / "deblocking" / "classic5"
    if not folder.is_dir():
        _skip(f"deblocking: no folder {folder}")
        return []
    cases = []
    for quality in sel.qualities:
        for name in sel.deblock:
            path = folder / f"{name}.bmp"
            if not path.is_file():
                _skip(f"deblocking: missing {path}")
                continue
            clean = _fit(_unit(read_image(path)), sel)
            jpeg = degrade(clean, "deblock", quality=quality).image
            cases.append(Case("deblock", f"deblock q{quality}", name, clean, jpeg, params={"quality": quality}))
    return cases


def _inpaint_case(image: Path, mask: Path, group: str, sel: Selection, crop_mask: bool) -> Case:
    clean = _unit(read_image(image))
    m = read_image(mask)
    m = (m if m.ndim == 2 else m[..., 0]) > 127
    if crop_mask:
        # an i.i.d. Bernoulli mask: a crop of it is a valid mask of the same density
        clean = _fit(clean, sel)
        m = _centre(m, *clean.shape[:2])
    else:
        clean = _fit(clean, sel)
        m = _fit(m.astype(np.uint8), sel, order=0) > 0
    observed = clean * (m[..., None] if clean.ndim == 3 else m)
    return Case(
        "inpaint",
        group,
        image.stem,
        clean,
        observed.astype(np.float32),
        mask=m,
        params={"observed_fraction": float(m.mean())},
    )


def inpaint_cases(root: Path, sel: Selection) -> list[Case]:
    folder = root / "inpainting"
    if not folder.is_dir():
        _skip(f"inpainting: no folder {folder}")
        return []
    cases = []
    for name in sel.inpaint:
        if name in REGIONS:
            image, mask, group, crop_mask = folder / f"{name}.png", folder / f"{name}_mask.png", "inpaint region", False
        else:
            image = folder / "bernoulli" / "img" / f"{name}.png"
            mask = folder / "bernoulli" / "mask" / f"{name}.png"
            group, crop_mask = "inpaint bernoulli 50%", True
        if not (image.is_file() and mask.is_file()):
            _skip(f"inpainting: missing {image} or {mask}")
            continue
        cases.append(_inpaint_case(image, mask, group, sel, crop_mask))
    return cases


def super_resolution_cases(root: Path, sel: Selection) -> list[Case]:
    folder = root / "super_resolution"
    if not folder.is_dir():
        _skip(f"super-resolution: no folder {folder}")
        return []
    paths = []
    for pattern in sel.super_resolution:
        found = sorted(folder.glob(f"{pattern}.png"))
        if not found:
            _skip(f"super-resolution: nothing matches {folder / pattern}.png")
        paths += found
    cases = []
    for factor in sel.factors:
        for path in paths:
            hr = _fit(_unit(read_image(path)), sel, multiple=max(MULTIPLE, factor))
            low = degrade(hr, "super_resolution", factor=factor)
            cases.append(
                Case(
                    "super_resolution",
                    f"SR x{factor}",
                    f"{path.parent.name}/{path.stem}",
                    low.clean,
                    low.image,
                    factor=factor,
                    params={"factor": factor},
                )
            )
    return cases


def enhance_cases(root: Path, sel: Selection) -> list[Case]:
    path = root / "enhancement" / "tulips.png"
    if not sel.enhance:
        return []
    if not path.is_file():
        _skip(f"enhancement: missing {path}")
        return []
    img = _fit(_unit(read_image(path)), sel)
    return [Case("enhance", "enhance", "tulips", img, img.copy())]


LOADERS = {
    "denoise": denoise_cases,
    "deblock": deblock_cases,
    "inpaint": inpaint_cases,
    "super_resolution": super_resolution_cases,
    "enhance": enhance_cases,
}


def load_cases(root: Path, sel: Selection, tasks: tuple[str, ...]) -> list[Case]:
    """All cases of ``tasks`` found under ``root``; missing parts are skipped with a message."""
    root = Path(root)
    if not root.is_dir():
        _skip(f"data folder {root} does not exist")
        return []
    cases = []
    for task in tasks:
        cases += LOADERS[task](root, sel)
    return cases
