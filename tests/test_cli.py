"""The ``stepgym`` command: help, one-line errors with exit status 2, train/evaluate runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from agents_toy_env import register_toy

from stepgym.cli import main

TOY = register_toy()
ROOT = Path(__file__).resolve().parents[1]


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_help_lists_subcommands_and_documents_every_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for sub in ("train", "evaluate", "transfer", "quickstart", "sweep", "reproduce"):
        assert sub in out
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--env-kwargs" in out and "JSON object" in out and "--n-envs" in out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["train", "--no-such-option", "1"], "Unrecognized options"),
        (["train", "--algo", "sac"], "invalid choice"),
        (["train", "--n-envs", "many"], "--n-envs"),
        (["train", "--env-id", "stepgym/ThreeBdy-v0"], "Did you mean 'stepgym/ThreeBody-v0'"),
        (["train", "--env-kwargs", "{bad json"], "JSON object"),
        (["evaluate", "--policy", "/no/such/run"], "no such run directory"),
        (["evaluate", "--env-id", TOY, "--baselines", "fixed_lr"], "is for cross_entropy"),
        (["evaluate", "--env-id", TOY, "--baselines", "timescle"], "Did you mean 'timescale'"),
        (["evaluate", "--env-id", TOY, "--n-episodes", "0"], "n-episodes must be a positive"),
        (["transfer"], "transfer needs --policies"),
        (["sweep", "--grid", "learning_rat=1e-3"], "Did you mean 'learning_rate'"),
        (["sweep", "--grid", "seed"], "must read NAME=VALUES"),
        (["sweep", "--random", "learning_rate=lognormal:1:2"], "unknown distribution"),
        (["sweep", "--scheduler", "asha", "--metric", "median_error"], "--metric eval_return"),
        (["reproduce", "softmax-spik"], "Did you mean 'softmax-spike'"),
        ([], "Expected one of"),
    ],
)
def test_mistakes_give_one_line_errors_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    assert fragment in one_line_error(capsys, argv)


def test_corrupted_model_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    assert (
        main(
            [
                "train",
                "--env-id",
                TOY,
                "--total-timesteps",
                "64",
                "--n-envs",
                "1",
                "--n-steps",
                "64",
                "--n-epochs",
                "1",
                "--eval-freq",
                "0",
                "--checkpoint-freq",
                "0",
                "--no-progress-bar",
                "--runs-dir",
                str(runs),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    (run_dir,) = runs.iterdir()
    assert f"run directory: {run_dir}" in out
    (run_dir / "model.zip").write_bytes(b"\x00" * 100)
    assert "corrupted" in one_line_error(capsys, ["evaluate", "--policy", str(run_dir)])


def test_evaluate_subcommand_prints_table_and_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = [
        "evaluate",
        "--env-id",
        TOY,
        "--baselines",
        "timescale",
        "pi",
        "--grid-points",
        "2",
        "--n-episodes",
        "2",
        "--out-dir",
        str(tmp_path),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "| controller |" in out and "timescale(eta=" in out and "pi(target=" in out
    assert str(tmp_path / "pareto.png") in out


def test_python_dash_m_stepgym_reports_errors_without_traceback() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "stepgym", "evaluate", "--policy", "missing_run"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: no such run directory")
    assert len(result.stderr.strip().splitlines()) == 1
