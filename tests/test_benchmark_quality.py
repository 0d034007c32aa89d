"""The quality benchmark's machinery on one tiny synthetic case (benchmarks/quality.py)."""

import math

import numpy as np

from benchmarks import datasets, quality
from benchmarks.stop_replay import replay_stop
from napari_dip_spectral.api import restore


def _case(name: str = "ramp") -> datasets.Case:
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:32, 0:32] / 32
    clean = np.stack([yy, xx, 0.5 * (yy + xx)], -1).astype(np.float32)
    noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1).astype(np.float32)
    return datasets.Case("denoise", "denoise test", name, clean, noisy, params={"sigma": 0.1})


def test_table_has_every_method_with_finite_psnr(tmp_path):
    settings = quality.Settings("test", iterations=5, channels=8, device="cpu")
    rows = quality.run_case(_case("F16"), settings, tmp_path)
    methods = [r.method for r in rows]
    assert methods[0] == "degraded input"
    assert any(m.startswith("NL-means") for m in methods)
    assert all(m in methods for m in quality.VARIANTS)
    assert sum(r.kind == "paper" for r in rows) == 4  # F-1 rows for F16
    for r in rows:
        if r.kind != "paper":
            assert math.isfinite(r.psnr) and math.isfinite(r.ssim)
    for r in (r for r in rows if r.kind == "dip"):
        assert r.iterations == 5 and 1 <= r.peak_iteration <= 5
        assert math.isfinite(r.psnr_stop)
        if not r.extra["nlm_share"] and not r.extra["wiener"]:  # the result is one of the decoder's iterates
            assert r.peak_psnr >= r.psnr - 0.01
    shares = {r.method: r.extra["nlm_share"] for r in rows if r.kind == "dip"}
    assert shares == {m: (0.3 if "default" in m else 0.0) for m in shares}  # denoising: the default mixes
    passes = {r.method: r.extra["wiener"] for r in rows if r.kind == "dip"}
    assert passes == {m: "default" in m for m in passes}  # and runs the Wiener pass
    logs = sorted((tmp_path / "logs").glob("*.csv"))
    assert len(logs) == len(quality.VARIANTS)
    lines = logs[0].read_text().splitlines()
    assert lines[0].startswith("iteration,loss,psnr,ratio,fbc_1")
    assert len(lines) in (2, 6)  # metrics every 10 (default profile: last only) or every 1

    report = quality.render(rows, ["# test"])
    table = [line for line in report.splitlines() if line.startswith("| F16 |")]
    assert len(table) == len(rows)
    header = next(line for line in report.splitlines() if line.startswith("| case |"))
    assert [c.strip() for c in header.strip("|").split("|")] == quality.DETAIL_COLUMNS
    summary = [line for line in report.splitlines() if line.startswith("| ours (paper profile) | 1 |")]
    assert len(summary) == 1


def test_stop_replay_matches_a_run_with_auto_stop():
    case = _case()
    n, budget = 3, 30
    options = dict(iterations=budget, channels=8, device="cpu", profile="paper", normalize="none", stop_window=n)
    free = restore(case.observed, "denoise", auto_stop=False, **options)
    ratio = {e.iteration: e.ratio for e in free.history}  # logged every iteration
    # the rule written out independently: windows [t-2n, t-n) and (t-n, t)
    diffs = {
        t: abs(np.mean([ratio[i] for i in range(t - 2 * n, t - n)]) - np.mean([ratio[i] for i in range(t - n + 1, t)]))
        for t in range(2 * n + 1, budget + 1)
    }
    smallest, second = sorted(set(diffs.values()))[:2]
    epsilon = (smallest + second) / 2
    expected = min(t for t, d in diffs.items() if d < epsilon)

    assert replay_stop(free.history, n, epsilon) == expected
    assert replay_stop(free.history, n, smallest / 2) is None
    stopped = restore(case.observed, "denoise", auto_stop=True, stop_epsilon=epsilon, **options)
    assert stopped.stop_reason == "auto_stop"
    assert stopped.stop_iteration == expected


def test_stop_replay_with_sparse_metrics_matches_a_run_with_auto_stop():
    case = _case()
    n, every = 4, 2
    options = dict(
        iterations=30, channels=8, device="cpu", profile="paper", normalize="none", stop_window=n, metrics_every=every
    )
    free = restore(case.observed, "denoise", auto_stop=False, **options)
    ratios = np.array([e.ratio for e in free.history])
    candidates = np.geomspace(np.ptp(ratios) * 1e-4, np.ptp(ratios), 25)
    fired = {eps: replay_stop(free.history, n, eps, every) for eps in candidates}
    later = [eps for eps, t in fired.items() if t is not None and t > 2 * n + every]
    epsilon = later[-1] if later else max(eps for eps, t in fired.items() if t is not None)
    stopped = restore(case.observed, "denoise", auto_stop=True, stop_epsilon=epsilon, **options)
    assert stopped.stop_reason == "auto_stop"
    assert stopped.stop_iteration == fired[epsilon]
