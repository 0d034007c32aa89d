"""benchmarks/noise_model.py: its error measure, and one row per case."""

import numpy as np
import pytest

from benchmarks import noise_model
from benchmarks.microscopy import GAIN, OFFSET, READ, Case, record
from napari_dip_spectral.noise.noise_fit import NoiseEstimate


def _model(scale: float, photons: float) -> NoiseEstimate:
    """The true line of benchmarks.microscopy's camera, every variance times ``scale``."""
    floor = (READ * GAIN * photons) ** 2 - GAIN * OFFSET
    return NoiseEstimate(GAIN * scale, floor * scale, OFFSET, 0.0, True, (), ())


def test_sd_error_is_the_log_ratio_of_deviations_over_the_pixels():
    clean = np.linspace(0, 1, 32 * 32).reshape(32, 32)
    case = Case("ramp", clean, record(clean, 20, 0), 20, "YX")
    assert noise_model.sd_error(case, _model(1.0, 20)) == pytest.approx(0, abs=1e-12)
    assert noise_model.sd_error(case, _model(2.0, 20)) == pytest.approx(np.log(np.sqrt(2)))
    assert noise_model.sd_error(case, _model(0.5, 20)) == pytest.approx(np.log(np.sqrt(2)))


def test_quick_rows_measure_the_estimate(capsys):
    assert noise_model.main(["--quick"]) == 0
    out = capsys.readouterr().out
    rows = [line.strip("| ").split(" | ") for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    rows = [r for r in rows if r[0] != "case"]
    assert rows and rows[-1][0] == "camera"
    for name, photons, gain_ratio, error, loss in rows:
        assert float(photons) == 20
        assert 0.7 < float(gain_ratio) < 1.4, name  # the gain within the tested accuracy
        assert 0 <= float(error) < 0.2, name  # the noise deviation within ~20 % where the pixels are
        if loss:
            assert float(loss) < 0.5, name  # the estimate does not beat the truth by far
    assert "mean sd error" in out
