"""benchmarks/pass_cost.py: one row per size, every step timed."""

from benchmarks import pass_cost


def test_one_row_per_size_with_a_time_for_every_step(capsys):
    assert pass_cost.main(["--sizes", "24,40", "--repeats", "1"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [line.split(" | ")[0] for line in lines] == ["| 24", "| 40"]
    for line in lines:
        cells = [float(v) for v in line.strip("| ").split(" | ")]
        assert all(v > 0 for v in cells[1:]) and abs(sum(cells[1:5]) - cells[5]) < 1e-3 * cells[5] + 1e-3


def test_one_row_per_stack_with_both_steps_timed(capsys):
    assert pass_cost.main(["--sizes", "24", "--repeats", "1", "--stacks", "3x20x20,5x16x24"]) == 0
    lines = [
        line
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("| ") and line[2].isdigit() and "x" in line[2:6]
    ]
    assert [line.split(" | ")[0] for line in lines] == ["| 3x20x20", "| 5x16x24"]
    for line in lines:
        cells = [float(v) for v in line.strip("| ").split(" | ")[1:]]
        assert all(v > 0 for v in cells) and abs(sum(cells[:2]) - cells[2]) < 1e-3 * cells[2] + 1e-3
