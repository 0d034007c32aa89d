"""benchmarks/after_fit.py: kept fits replay the steps after the fit exactly."""

import numpy as np

from benchmarks.after_fit import compare, keep, replay
from benchmarks.microscopy import Case, psnr, record

from .test_noise_fit import blobs

SHORT = dict(iterations=6, channels=8, levels=2)


def test_a_kept_fit_replays_the_default_and_the_variants_differ(tmp_path, capsys):
    clean = blobs(40, 3)
    case = Case("blobs", clean, record(clean, 20.0, seed=0), 20.0, "YX")
    (path,) = keep([case], tmp_path, **SHORT)
    kept = np.load(path)
    assert kept["kept"].shape == (1, 1, 40, 40) and kept["result"].shape == (40, 40)
    variants = {"default": {}, "no boost": {"boost": False}, "no share": {"threshold": 0.0}}
    _, scores, drift = replay(path, variants)
    assert drift < 1e-4  # the default's steps on the kept output give the kept result
    assert abs(scores["default"] - psnr(case.unit(kept["result"]), clean)) < 1e-3
    assert len({round(v, 6) for v in scores.values()}) == 3  # each variant changes the result
    table = compare(tmp_path, variants)
    assert table["blobs@20"] == scores and "Mean per photon level" in capsys.readouterr().out
