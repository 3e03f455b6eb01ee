"""The experiment scripts print commands the ``stepgym`` CLI accepts (checked by parsing them)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from agents_toy_env import train_briefly

from stepgym.agents.config import EvaluateConfig, SweepConfig, TrainConfig, TransferConfig
from stepgym.cli import parse

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = [
    "seed_protocol",
    "timescale_vs_ppo",
    "cross_entropy_policy",
    "transfer",
    "reward_landscape",
]


@pytest.mark.parametrize("script", SCRIPTS)
def test_dry_run_prints_valid_stepgym_commands(script: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "experiments" / f"{script}.py"),
            "--dry-run",
            "--runs-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    commands = [line[2:] for line in result.stdout.splitlines() if line.startswith("$ ")]
    assert commands
    kinds = set()
    for command in commands:
        words = shlex.split(command)
        assert words[:3] == ["python", "-m", "stepgym"]
        config = parse(words[3:])
        kinds.add(type(config))
    assert kinds & {TrainConfig, EvaluateConfig, TransferConfig, SweepConfig}


def test_policy_behaviour_relates_the_setting_to_every_feature(tmp_path: Path) -> None:
    kwargs = '{"integrator": "leapfrog", "step_mode": "timescale", "horizon": 0.5}'
    run = train_briefly(tmp_path, "stepgym/ThreeBody-v0", kwargs)
    script = ROOT / "experiments" / "policy_behaviour.py"
    result = subprocess.run(
        [sys.executable, str(script), str(run), "--episodes", "2"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "in 2 held-out episodes" in result.stdout
    rows = [line for line in result.stdout.splitlines() if line.startswith("| log_")]
    # the default feature set has four log_ features, each with a correlation or "constant"
    assert len(rows) == 4


def test_paired_returns_compares_the_same_seeds(tmp_path: Path) -> None:
    import csv

    path = tmp_path / "episodes.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["controller", "seed", "return", "cost"])
        writer.writeheader()
        for seed, (mine, theirs) in enumerate([(1.0, 0.0), (3.0, 2.0), (0.0, 1.0)]):
            writer.writerow({"controller": "a", "seed": seed, "return": mine, "cost": 10})
            writer.writerow({"controller": "b", "seed": seed, "return": theirs, "cost": 20})
    script = ROOT / "experiments" / "paired_returns.py"
    result = subprocess.run(
        [sys.executable, str(script), f"{path}:a", f"{path}:b"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # differences +1, +1, -1: mean 1/3, standard error sqrt(4/3 / 3) = 0.667
    assert "+0.333 +- 0.667" in result.stdout and "first ahead in 2 of 3" in result.stdout
    missing = subprocess.run(
        [sys.executable, str(script), f"{path}:a", f"{path}:nobody"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode != 0 and "no episodes of controller 'nobody'" in missing.stderr
