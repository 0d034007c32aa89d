"""Presets: the JSON settings shared by the widgets and the CLI (--config), and run records
replayed through them."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import tifffile

from napari_dip_spectral.cli import main
from napari_dip_spectral.presets import (
    check_preset,
    from_config,
    make_preset,
    read_preset,
    settings_dir,
    settings_path,
    to_options,
    write_preset,
)

FAST = ["--iterations", "5", "--channels", "8"]


def test_a_preset_round_trips_through_its_file(tmp_path):
    settings = {
        "profile": "paper",
        "iterations": 300,
        "lipschitz": "none",
        "seed": 7,
        "anscombe": {"gain": 2.0, "offset": 100.0, "read_noise": 1.5},
        "normalize": "percentile",
        "tile_size": 64,
        "stack_prior": "volume",
        "channels": None,  # None is "the default": not stored
    }
    preset = make_preset("denoise", settings)
    assert preset["format"] == "napari-dip-spectral preset" and preset["version"] == 1
    assert "channels" not in preset["settings"]
    write_preset(tmp_path / "p.json", preset)
    assert read_preset(tmp_path / "p.json", "denoise") == preset
    assert to_options(preset["settings"])["lipschitz"] == math.inf
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"iteratons": 5}, "unknown preset key 'iteratons' (did you mean 'iterations'?)"),
        ({"colour": 5}, "unknown preset key 'colour'; known keys:"),
        ({"iterations": "ten"}, "preset key 'iterations' must be an integer >= 1, got 'ten'"),
        ({"iterations": 2.0}, "preset key 'iterations' must be an integer >= 1"),
        ({"auto_stop": 1}, "preset key 'auto_stop' must be true or false"),
        ({"lipschitz": -1}, "preset key 'lipschitz' must be a number > 0, or 'none'"),
        ({"upsample": "cubic"}, "preset key 'upsample' must be one of 'gaussian'"),
        ({"factor": 4}, "preset key 'factor' is only used by task 'super_resolution', not 'denoise'"),
        ({"anscombe": {"gain": 0}}, "preset key 'anscombe' must be camera gain must be"),
        ({"anscombe": {"gian": 1}}, "unknown: gian"),
        ({"tile_size": 8}, "preset key 'tile_size' must be an integer >= 16"),
        ({"nlm_share": 1}, "preset key 'nlm_share' must be a number in [0, 1)"),
        ({"wiener": "on"}, "preset key 'wiener' must be true or false"),
    ],
)
def test_bad_settings_are_refused_by_name(settings, message):
    with pytest.raises(ValueError) as error:
        make_preset("denoise", settings)
    assert message in str(error.value)


def test_bad_files_are_refused_with_the_reason(tmp_path):
    path = tmp_path / "p.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"p\.json is not valid JSON"):
        read_preset(path)
    path.write_text(json.dumps({"task": "denoise", "iterations": 5}))
    with pytest.raises(ValueError, match="not a preset"):
        read_preset(path)
    good = make_preset("deblock", {"iterations": 5})
    path.write_text(json.dumps({**good, "comment": "x"}))
    with pytest.raises(ValueError, match="unknown preset key 'comment'"):
        read_preset(path)
    path.write_text(json.dumps({**good, "version": 2}))
    with pytest.raises(ValueError, match="preset version 2 is not supported"):
        read_preset(path)
    path.write_text(json.dumps(good))
    with pytest.raises(ValueError, match="settings of task 'deblock', not 'denoise'"):
        read_preset(path, "denoise")


def test_the_settings_folder_can_be_overridden(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_DIP_SPECTRAL_CONFIG_DIR", str(tmp_path / "cfg"))
    assert settings_dir() == tmp_path / "cfg"
    assert settings_path("enhance") == tmp_path / "cfg" / "enhance.json"
    monkeypatch.delenv("NAPARI_DIP_SPECTRAL_CONFIG_DIR")
    assert settings_dir().name == "napari-dip-spectral"


def test_settings_from_a_solver_configuration():
    from dataclasses import asdict

    from napari_dip_spectral.core.config import task_defaults

    config = asdict(task_defaults("denoise").replace(iterations=123, seed=4, lipschitz_by_size=True))
    settings = from_config("denoise", config)
    assert settings["iterations"] == 123 and settings["seed"] == 4
    assert "lipschitz" not in settings  # left to the profile, which scales it to the image
    assert from_config("denoise", dict(config, lipschitz=None))["lipschitz"] == "none"


# ----------------------------------------------------------------------------- the CLI
@pytest.fixture
def small_tiff(tmp_path):
    rng = np.random.default_rng(0)
    data = (rng.random((24, 24)) * 200 + 20).astype(np.uint8)
    path = tmp_path / "in" / "small.tif"
    path.parent.mkdir()
    tifffile.imwrite(path, data)
    return path


def record_of(folder) -> dict:
    return json.loads((folder / "small_denoise.json").read_text())


def test_config_runs_what_the_same_flags_run(tmp_path, small_tiff):
    flags = ["--seed", "3", "--lipschitz", "1.2", "--upsample", "bilinear", "--normalize", "percentile"]
    assert main(["denoise", str(small_tiff), "-o", str(tmp_path / "flags"), *FAST, "--no-auto-stop", *flags]) == 0
    preset = make_preset(
        "denoise",
        {
            "iterations": 5,
            "channels": 8,
            "auto_stop": False,
            "seed": 3,
            "lipschitz": 1.2,
            "upsample": "bilinear",
            "normalize": "percentile",
            "preview_every": 10,  # a widget setting: the CLI shows no previews
        },
    )
    write_preset(tmp_path / "preset.json", preset)
    config = ["--config", str(tmp_path / "preset.json")]
    assert main(["denoise", str(small_tiff), "-o", str(tmp_path / "preset"), *config]) == 0
    by_flags, by_preset = record_of(tmp_path / "flags"), record_of(tmp_path / "preset")
    assert by_preset["options"] == by_flags["options"]
    assert by_preset["config"] == by_flags["config"]
    assert by_preset["config"]["preview_every"] == 0 and by_preset["seed"] == 3
    assert by_preset["config"]["lipschitz"] == 1.2 and by_preset["iterations"] == 5
    np.testing.assert_array_equal(
        tifffile.imread(tmp_path / "flags" / "small_denoise.tif"),
        tifffile.imread(tmp_path / "preset" / "small_denoise.tif"),
    )


def test_flags_on_the_command_line_override_the_config(tmp_path, small_tiff):
    preset = make_preset(
        "denoise", {"iterations": 5, "channels": 8, "seed": 3, "anscombe": {"gain": 2.0, "offset": 1.0}}
    )
    write_preset(tmp_path / "preset.json", preset)
    args = ["denoise", str(small_tiff), "-o", str(tmp_path / "o"), "--config", str(tmp_path / "preset.json")]
    assert main([*args, "--seed", "0", "--iterations", "4", "--anscombe-gain", "3"]) == 0
    record = record_of(tmp_path / "o")
    assert record["seed"] == 0 and record["config"]["seed"] == 0  # 0 is the flag's default: still given
    assert record["iterations"] == 4 and record["config"]["channels"] == 8
    assert record["options"]["anscombe"] == {"gain": 3.0, "offset": 1.0, "read_noise": 0.0}
    assert record["config"] and record["noise_model"]["source"] == "given"


def test_a_run_record_is_replayed(tmp_path, small_tiff):
    first = ["denoise", str(small_tiff), "-o", str(tmp_path / "a"), *FAST, "--seed", "5", "--lipschitz", "none"]
    assert main([*first, "--no-anscombe", "--no-auto-stop"]) == 0
    record = tmp_path / "a" / "small_denoise.json"
    assert main(["denoise", str(small_tiff), "-o", str(tmp_path / "b"), "--config", str(record)]) == 0
    before, after = record_of(tmp_path / "a"), record_of(tmp_path / "b")
    assert after["options"] == before["options"] and after["config"] == before["config"]
    assert after["config"]["lipschitz"] is None and after["config"]["seed"] == 5
    assert after["config_file"] == str(record)
    np.testing.assert_array_equal(
        tifffile.imread(tmp_path / "a" / "small_denoise.tif"), tifffile.imread(tmp_path / "b" / "small_denoise.tif")
    )


def test_a_bad_config_is_a_usage_error_that_names_the_key(tmp_path, small_tiff, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**make_preset("denoise", {}), "settings": {"iterations": 0}}))
    assert main(["denoise", str(small_tiff), "-o", str(tmp_path / "o"), "--config", str(bad)]) == 2
    assert "preset key 'iterations' must be an integer >= 1, got 0" in capsys.readouterr().err
    assert main(["deblock", str(small_tiff), "-o", str(tmp_path / "o"), "--config", str(bad)]) == 2
    assert main(["denoise", str(small_tiff), "-o", str(tmp_path / "o"), "--config", str(tmp_path / "none")]) == 2
    assert not (tmp_path / "o" / "small_denoise.tif").exists()


def test_check_preset_reads_a_record_of_the_cli():
    record = {"task": "super_resolution", "options": {"factor": 2, "lipschitz": math.inf, "iterations": None}}
    preset = check_preset(record)
    assert preset["task"] == "super_resolution"
    assert preset["settings"] == {"factor": 2, "lipschitz": "none"}


def test_the_record_saved_beside_a_result_layer_gives_its_preset():
    preset = make_preset("denoise", {"seed": 2, "lipschitz": "none"})
    record = {"image": "x.tif", "run": {"task": "denoise", "config": {}, "settings": preset}, "versions": {}}
    assert check_preset(record) == preset
    with pytest.raises(ValueError, match="no 'run' with 'settings'"):
        check_preset({"image": "x.tif", "run": {"task": "denoise"}})
