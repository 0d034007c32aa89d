"""Property-based tests (hypothesis) of the ``dip-spectral`` command line, run in-process
through ``main(argv)``: odd files, absurd option values, wrong axes, missing files and outputs
that cannot be written. Every invocation ends in exit code 0 with a readable output of the
input's spatial shape and the expected dtype, or in a non-zero code with a one-line message on
stderr that names the problem; never a traceback, and the input file's bytes never change."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import tifffile
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from napari_dip_spectral.cli import main

# tiny runs: a narrow network and two iterations keep each example well under a second
FAST = ["--iterations", "2", "--channels", "4", "--device", "cpu", "--no-auto-stop"]
# "ci" (the default) replays the same cases each run; HYPOTHESIS_PROFILE=deep draws more fresh
# ones (run before closing reliability work, docs/reliability.md)
settings.register_profile(
    "cli-ci", max_examples=60, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.register_profile("cli-deep", max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
CLI = settings.get_profile("cli-deep" if os.environ.get("HYPOTHESIS_PROFILE") == "deep" else "cli-ci")

# hypothesis draws the first elements of a list most often: the usual cases first, odd ones after
DTYPES = ["uint16", "float32", "uint8", "int8", "float16", "float64", "int16", "int32", "bool"]
# words one of which an error message must carry: the option, the file or what is wrong with it
NAMED = (
    "argument",
    "iterations",
    "channels",
    "lipschitz",
    "tile",
    "memory",
    "batch",
    "axes",
    "image",
    "constant",
    "small",
    "nan",
    "inf",
    "dtype",
    "mask",
    "output",
    "folder",
    "directory",
    "no such file",
    "not a directory",
    "file exists",
    "tiff",
    "config",
    "seed",
    "gain",
    "estimate",
)
# what an error from inside torch, numpy or a coding slip looks like on a FAILED line
INTERNAL = ("RuntimeError", "IndexError", "KeyError", "AttributeError", "ZeroDivisionError", "AssertionError")


def digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


@st.composite
def arrays(draw):
    """Small stacks of any numeric (or bool) dtype: 1-pixel sides, singleton axes, NaN, inf,
    constant planes, the dtype's extremes."""
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    side = st.sampled_from([16, 8, 9, 12, 1, 2, 7])
    shape = (draw(side), draw(side))
    lead = draw(st.sampled_from([(), (2,), (1,), (3,), (1, 1)]))
    shape = lead + shape
    kind = draw(st.sampled_from(["random", "random", "extreme", "constant", "nan", "inf"]))
    rng = np.random.default_rng(draw(st.integers(0, 3)))
    if dtype.kind == "b":
        data = rng.random(shape) > 0.5
    elif dtype.kind == "f":
        data = rng.random(shape).astype(dtype)
    else:
        info = np.iinfo(dtype)
        data = rng.integers(max(info.min, -1000), min(info.max, 1000), size=shape, endpoint=True).astype(dtype)
    if kind == "constant":
        data[...] = data.flat[0]
    elif kind == "extreme" and dtype.kind in "iuf":
        info = np.finfo(dtype) if dtype.kind == "f" else np.iinfo(dtype)
        data = np.where(np.indices(shape).sum(0) % 2 == 0, info.max, info.min).astype(dtype)
    elif kind in ("nan", "inf") and dtype.kind == "f":
        data.flat[0] = np.nan if kind == "nan" else -np.inf
    return data


def write_input(folder: Path, data: np.ndarray) -> Path:
    path = folder / "in.tif"
    # minisblack: a (3, Y, X) stack is not stored as one RGB image
    tifffile.imwrite(path, data, photometric="minisblack")
    return path


def invoke(argv: list[str], capsys) -> tuple[int, str]:
    """``main(argv)``'s exit code and stderr; any exception escaping main fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # guessed axes and similar notices
        code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    event(f"exit code {code}")  # --hypothesis-show-statistics: how many ran, how many were refused
    return code, err


def check_failure(code: int, err: str) -> str:
    """A non-zero exit says what went wrong in one line that names it."""
    assert code in (1, 2), (code, err)
    lines = [line for line in err.splitlines() if line.startswith(("dip-spectral: error:", "FAILED "))]
    assert len(lines) >= 1, err
    event(re.sub(r"/\S*/", "", lines[0])[:60])  # the kinds of refusal, for the statistics
    for line in lines:
        assert not any(f"{kind}:" in line for kind in INTERNAL), line
        assert any(word in line.lower() for word in NAMED), line
    return lines[0]


def check_output(out: Path, shape: tuple, spatial: int, dtype) -> None:
    """A readable TIFF of the input's shape (Y, X times the factor) and the expected dtype."""
    with tifffile.TiffFile(out) as tif:
        data = tif.series[0].asarray()
        # no input here has colour samples: a plane stack tagged RGB shows as one colour image
        assert tif.pages[0].photometric != tifffile.PHOTOMETRIC.RGB, (out, data.shape)
    assert data.shape == shape[:-2] + (shape[-2] * spatial, shape[-1] * spatial), (data.shape, shape)
    assert data.dtype == dtype, (data.dtype, dtype)
    assert np.isfinite(data).all()


def expected_dtype(dtype: np.dtype, output_dtype: str) -> np.dtype:
    if output_dtype == "input" and dtype.kind in "ui":
        return dtype
    return np.dtype(np.float32)


@CLI
@given(
    data=arrays(),
    task=st.sampled_from(["denoise", "denoise", "enhance", "super_resolution"]),
    output_dtype=st.sampled_from(["input", "float32"]),
)
@example(data=np.ones((1, 8, 8), np.uint16) * 7, task="denoise", output_dtype="input")
# a 3-plane stack was written as one RGB image (tifffile's guess for a (3, Y, X) array)
@example(data=np.arange(3 * 16 * 16, dtype=np.uint16).reshape(3, 16, 16), task="denoise", output_dtype="input")
def test_any_file_ends_in_an_output_or_a_named_error(data, task, output_dtype, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = write_input(folder, data)
        before = digest(path)
        argv = ["denoise" if task == "denoise" else task, path, "-o", folder / "out", *FAST]
        argv += ["--output-dtype", output_dtype] + (["--factor", "2"] if task == "super_resolution" else [])
        code, err = invoke(argv, capsys)
        assert digest(path) == before, "the input file changed"
        if code != 0:
            line = check_failure(code, err)
            finite = data.dtype.kind != "f" or np.isfinite(data).all()
            usable = data.dtype.kind != "b" and min(data.shape[-2:]) >= 8 and finite and data.min() < data.max()
            if data.ndim > 3:  # two leading axes of unknown meaning: the user is asked which
                usable = usable and "pass --axes" not in line
            assert not usable, err  # nothing else should be refused
            return
        stored = tifffile.imread(path)  # what the CLI read: tifffile may drop singleton axes
        check_output(
            folder / "out" / f"in_{task}.tif",
            stored.shape,
            2 if task == "super_resolution" else 1,
            expected_dtype(data.dtype, output_dtype),
        )


AXES = st.one_of(
    st.sampled_from(["YX", "ZYX", "TZYX", "yx", "YXZ", "CYX", "YXS", "", "QQ", "YXYX", "ZZYX", "TCZYX", "X", "ÄYX"]),
    st.text(alphabet="TZCYXSQ ", max_size=5),
)


@CLI
@given(lead=st.sampled_from([(), (2,), (1,), (1, 1), (2, 3)]), axes=AXES)
# a file whose own axes repeat (tifffile's 'QQYX') was refused even with --axes, which the
# message itself asked for
@example(lead=(1, 1), axes="TZYX")
def test_any_axes_string_ends_in_an_output_or_a_named_error(lead, axes, capsys):
    data = np.random.default_rng(0).random(lead + (16, 16)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = write_input(folder, data)
        before = digest(path)
        code, err = invoke(["denoise", path, "-o", folder / "out", "--axes", axes, *FAST], capsys)
        assert digest(path) == before, "the input file changed"
        if code != 0:
            check_failure(code, err)
            plain = {2: "YX", 3: "ZYX", 4: "TZYX"}[data.ndim]  # axes these shapes always take
            assert not (axes.upper() == plain or (not axes and data.ndim < 4)), err
            return
        check_output(folder / "out" / "in_denoise.tif", tifffile.imread(path).shape, 1, np.dtype(np.float32))


HUGE = 10**12
# [flag, value] pairs, absurd and ordinary; a case draws a few of them
NUMBERS = [
    [flag, str(value)]
    for flag, values in {
        "--iterations": [1, 0, -3, HUGE, "two", "2.5"],
        "--channels": [1, 3, 0, -1, 4097, 10**9, "x"],
        "--lipschitz": ["none", "1e300", "1e-300", "0", "-1", "nan", "inf", "abc"],
        "--tile-size": [16, 12, 8, 1, 0, -1, HUGE],
        "--memory-limit": ["1e12", "1e-12", "0", "-1", "nan", "inf", "x"],
        "--batch-size": [1, HUGE, 0, -1],
        "--seed": [-1, 2**63, 10**30],
        "--anscombe-gain": ["0.5", "0", "nan", "-inf"],
    }.items()
    for value in values
]


@CLI
@given(numbers=st.lists(st.sampled_from(NUMBERS), max_size=3), stack=st.booleans())
@example(numbers=[["--seed", str(10**30)]], stack=False)
@example(numbers=[["--memory-limit", "1e-12"], ["--tile-size", "8"]], stack=True)
def test_absurd_numbers_end_in_an_output_or_a_named_error(numbers, stack, capsys):
    data = np.random.default_rng(1).random((2, 16, 16) if stack else (16, 16)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = write_input(folder, data)
        before = digest(path)
        argv = ["denoise", path, "-o", folder / "out", *FAST] + (["--axes", "ZYX"] if stack else [])
        argv += [a for pair in numbers for a in pair]  # a later flag overrides FAST's
        if any(flag == "--anscombe-gain" for flag, _ in numbers):
            argv.append("--anscombe")
        if ["--iterations", str(HUGE)] in numbers:  # a budget nobody waits for: only its estimate is run
            argv.append("--estimate")
        code, err = invoke(argv, capsys)
        assert digest(path) == before, "the input file changed"
        if code != 0:
            check_failure(code, err)
            return
        if "--estimate" in argv:
            assert "at most" in err and not (folder / "out" / "in_denoise.tif").exists()
            return
        check_output(folder / "out" / "in_denoise.tif", data.shape, 1, np.dtype(np.float32))


def make_input(folder: Path, kind: str) -> Path:
    """An input path: a good TIFF, or one that is missing, a folder, garbage or empty."""
    path = folder / {"unknown suffix": "in.xyz", "garbage png": "in.png"}.get(kind, "in.tif")
    if kind == "good":
        tifffile.imwrite(path, np.random.default_rng(2).random((16, 16)).astype(np.float32))
    elif kind == "folder":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind != "missing":
        path.write_bytes(b"not an image\n" * 10)
    return path


def make_output(folder: Path, kind: str) -> Path:
    """An output folder: new, the input's own, or one that cannot be made or written."""
    if kind == "an existing file":
        (folder / "taken").write_text("x")
        return folder / "taken"
    if kind == "under a file":
        (folder / "file").write_text("x")
        return folder / "file" / "out"
    return {"new": folder / "out", "the input's folder": folder, "under /dev/null": Path("/dev/null/out")}[kind]


@CLI
@given(
    source=st.sampled_from(["good", "missing", "folder", "garbage", "empty", "unknown suffix", "garbage png"]),
    target=st.sampled_from(["new", "new", "the input's folder", "an existing file", "under a file", "under /dev/null"]),
    # most cases without an extra problem, so that the file's own is what is reported
    extra=st.sampled_from(["none"] * 4 + ["missing config", "garbage config", "missing mask", "mask of another shape"]),
)
# an output folder that could not be made ended in a traceback after the options were read
@example(source="good", target="an existing file", extra="none")
@example(source="good", target="under /dev/null", extra="none")
def test_missing_files_and_unwritable_outputs_end_in_a_named_error(source, target, extra, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = make_input(folder, source)
        out = make_output(folder, target)
        before = digest(path)
        argv = ["denoise", path, "-o", out, *FAST]
        if extra in ("missing config", "garbage config"):
            config = folder / "preset.json"
            if extra == "garbage config":
                config.write_text("{not json")
            argv += ["--config", config]
        elif extra in ("missing mask", "mask of another shape"):
            mask = folder / "mask.tif"
            if extra == "mask of another shape":
                tifffile.imwrite(mask, np.ones((8, 8), np.uint8))
            argv = ["inpaint", *argv[1:], "--mask", mask]
        code, err = invoke(argv, capsys)
        assert digest(path) == before, "the input file changed"
        if code != 0:
            check_failure(code, err)
            assert not (source == "good" and target in ("new", "the input's folder") and extra == "none"), err
            return
        assert source == "good" and target in ("new", "the input's folder") and extra == "none"
        task = argv[0]
        check_output(out / f"in_{task}.tif", (16, 16), 1, np.dtype(np.float32))


def test_an_output_folder_without_write_permission_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    import errno

    path = write_input(tmp_path, np.random.default_rng(0).random((16, 16)).astype(np.float32))
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() != 0:
        locked.chmod(0o500)
    else:  # root writes anywhere: the refusal the operating system gives a user, simulated

        def refuse(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied")

        monkeypatch.setattr("napari_dip_spectral.cli.tempfile.TemporaryFile", refuse)
    read = []
    monkeypatch.setattr("napari_dip_spectral.files.read_image", lambda *a, **k: read.append(a))
    try:
        code = main([str(a) for a in ["denoise", path, "-o", locked, *FAST]])
    finally:
        locked.chmod(0o700)
    err = capsys.readouterr().err
    assert code == 2 and "cannot write to the output folder" in err and "Permission denied" in err
    assert read == [] and list(locked.iterdir()) == []  # refused before the input was read
