"""The experiment scripts print commands the ``stepgym`` CLI accepts (checked by parsing them)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from stepgym.agents.config import EvaluateConfig, TrainConfig, TransferConfig
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
    assert kinds & {TrainConfig, EvaluateConfig, TransferConfig}
