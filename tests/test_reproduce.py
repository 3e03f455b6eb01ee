"""``stepgym reproduce``: the target list, Tyurin's exact counts, and every target at --quick
size writing its report."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from stepgym.cli import main
from stepgym.reproduce import list_targets
from stepgym.reproduce.tyurin import (
    PAPER,
    RULES,
    iterations_to_separate,
    softmax_iterations,
    worst_case,
)

TARGETS = (
    "softmax-spike",
    "softmax-architectures",
    "softmax-temperature",
    "tyurin",
    "adamp",
    "three-body-rl",
)


@pytest.fixture
def private_dir() -> Iterator[Path]:
    """Outside pytest's shared base, which another session may prune meanwhile."""
    with tempfile.TemporaryDirectory(prefix="stepgym_reproduce_") as name:
        yield Path(name)


def test_list_shows_every_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert {name for name, _ in list_targets()} == set(TARGETS)
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    for name in TARGETS:
        assert name in out


def test_unknown_target_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "tyurn"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "Did you mean 'tyurin'" in err and "\n" not in err


def test_tyurin_counts_equal_the_papers() -> None:
    a, y = worst_case(1000)
    for rule, gamma in RULES:
        normalized = rule.startswith("Normalized")
        assert iterations_to_separate(a, y, gamma, normalized) == PAPER[(rule, gamma)]


def test_two_logit_softmax_is_the_binary_model_at_twice_the_step() -> None:
    a, y = worst_case(200)
    for gamma, normalized in ((50.0, False), (0.5, True), (0.05, True)):
        assert softmax_iterations(a, y, gamma, normalized, bias=False) == iterations_to_separate(
            a, y, 2 * gamma, normalized
        )
    # and the counts are not trivially equal across settings
    assert iterations_to_separate(a, y, 0.1, True) != iterations_to_separate(a, y, 1.0, True)
    assert worst_case(5)[0].shape == (5, 2) and np.all(worst_case(5)[1][:-1] == -1)


@pytest.mark.slow
@pytest.mark.parametrize("name", TARGETS)
def test_every_target_runs_quick_and_writes_its_report(
    name: str, private_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = private_dir / "results"
    argv = ["reproduce", name, "--quick", "--out-dir", str(out_dir)]
    argv += ["--work-dir", str(private_dir / "work"), "--num-cpus", "2"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    report = (out_dir / f"{name}.md").read_text()
    assert f"Command: `stepgym reproduce {name} --quick`" in report
    for section in ("## Settings", "## Ours next to the paper's", "Seeds:"):
        assert section in report
    assert "| " in report  # a table
    assert "Ours next to the paper's" in printed
    for line in report.splitlines():
        if line.startswith("![") and "](" in line:
            image = out_dir / line.split("](")[1].rstrip(")")
            assert image.read_bytes()[:4] == b"\x89PNG"
