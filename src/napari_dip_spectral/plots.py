"""FBC and stopping plots as RGB arrays (for napari image layers) or PNG files (CLI).

Rendered with matplotlib's Agg backend, so no display is needed. Inputs are the ``history``
of a result (a list of log entries with ``.iteration``, ``.fbc``, ``.ratio``, ``.psnr``).
"""

from __future__ import annotations

import numpy as np

# dark brown (band 1, lowest) to light orange (highest), as in the paper's figures
_BAND_COLOURS = ["#4a2106", "#7f3b08", "#b35806", "#e08214", "#fdb863", "#fee0b6"]


def _figure(width=6.4, height=3.6):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _to_array(fig) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _band_colour(k: int, n: int) -> str:
    if n <= len(_BAND_COLOURS):
        return _BAND_COLOURS[round(k * (len(_BAND_COLOURS) - 1) / max(n - 1, 1))]
    import matplotlib

    return matplotlib.colormaps["copper"](1 - k / max(n - 1, 1))


def fbc_matrix(history) -> tuple[np.ndarray, np.ndarray]:
    """(iterations, fbc) with fbc of shape ``(n_bands, n_logged)``: a heat map's data."""
    its = np.array([h.iteration for h in history], dtype=float)
    fbc = np.array([h.fbc for h in history], dtype=float).T if history else np.zeros((0, 0))
    return its, fbc


def fbc_figure(history, stop_iteration: int | None = None, title: str = "Frequency-band correspondence"):
    """FBC per band over iterations (band 1 = lowest frequencies), stop iteration marked."""
    fig = _figure()
    ax = fig.add_subplot()
    its, fbc = fbc_matrix(history)
    n = fbc.shape[0]
    for k in range(n):
        label = f"band {k + 1}" + (" (lowest)" if k == 0 else " (highest)" if k == n - 1 else "")
        ax.plot(its, fbc[k], color=_band_colour(k, n), label=label, lw=1.6)
    if stop_iteration:
        ax.axvline(stop_iteration, color="green", ls="--", lw=1.2, label=f"stop ({stop_iteration})")
    ax.set(xlabel="iteration", ylabel="FBC (mean clipped magnitude ratio)", ylim=(0, 1.02), title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def stopping_figure(history, stop_iteration: int | None = None, title: str = "Automatic stopping"):
    """The signal of the stop rule over iterations: the data term over the noise level (the
    "noise" rule; the stop is where it crosses 1) or the blur/sharpness ratio (the paper's
    rule). PSNR on a second axis when logged."""
    fig = _figure()
    ax = fig.add_subplot()
    its = [h.iteration for h in history]
    noise_rule = bool(history) and getattr(history[0], "noise_level_all", None)
    if noise_rule:
        rel = [float(np.mean(np.asarray(h.fit_all) / np.asarray(h.noise_level_all))) for h in history]
        ax.plot(its, rel, color="tab:blue", lw=1.5, label="data term / noise level")
        ax.axhline(1.0, color="tab:blue", ls=":", lw=1, label="stop level")
        ax.set_ylim(0.8, min(max(rel), 4.0) * 1.05)
        ax.set(xlabel="iteration", ylabel="data term / noise level", title=title)
    else:
        ax.plot(its, [h.ratio for h in history], color="tab:blue", lw=1.5, label="blur / sharpness ratio")
        ax.set(xlabel="iteration", ylabel="stop ratio", title=title)
    ax.grid(alpha=0.3)
    handles = ax.get_lines()
    if history and history[0].psnr is not None:
        ax2 = ax.twinx()
        handles += ax2.plot(its, [h.psnr for h in history], color="tab:red", lw=1.5, label="PSNR (dB)")
        ax2.set_ylabel("PSNR vs reference (dB)")
    if stop_iteration:
        handles.append(ax.axvline(stop_iteration, color="green", ls="--", lw=1.2, label=f"stop ({stop_iteration})"))
    ax.legend(handles=handles, labels=[h.get_label() for h in handles], fontsize=8, loc="upper right")
    return fig


def fbc_plot(history, stop_iteration=None) -> np.ndarray:
    """The FBC figure as an ``(H, W, 3)`` uint8 array."""
    return _to_array(fbc_figure(history, stop_iteration))


def stopping_plot(history, stop_iteration=None) -> np.ndarray:
    """The stopping figure as an ``(H, W, 3)`` uint8 array."""
    return _to_array(stopping_figure(history, stop_iteration))


def save_plots(history, folder, stem: str, stop_iteration=None) -> list:
    """Write ``<stem>_fbc.png`` and ``<stem>_stopping.png`` into ``folder``; return the paths."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, make in (("fbc", fbc_figure), ("stopping", stopping_figure)):
        path = folder / f"{stem}_{name}.png"
        make(history, stop_iteration).savefig(path)
        paths.append(path)
    return paths
