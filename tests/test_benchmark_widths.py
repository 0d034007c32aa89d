"""benchmarks/widths.py: a row per image with every width, and each width's difference."""

from benchmarks import widths


def test_rows_and_differences_per_width(capsys):
    assert (
        widths.main(
            ["--tasks", "inpaint", "--widths", "16,8", "--size", "32", "--images", "camera", "--iterations", "3"]
        )
        == 0
    )
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| camera")]
    assert len(rows) == 1 and rows[0].count("(3, ") == 2  # both widths ran their 3 iterations
    assert "inpaint: 8 - 16 channels mean" in out
