"""The quickstart end to end on the real ThreeBody-v0, on a tiny budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from stepgym.cli import main


def test_quickstart_trains_evaluates_and_reports_where_files_went(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    status = main(
        [
            "quickstart",
            "--total-timesteps",
            "256",
            "--n-envs",
            "2",
            "--n-episodes",
            "2",
            "--grid-points",
            "2",
            "--bisect-iters",
            "1",
            "--horizon",
            "3.0",
            "--no-progress-bar",
            "--runs-dir",
            str(tmp_path / "runs"),
        ]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert "| policy |" in out and "timescale(eta=" in out and "fixed(setting=" in out
    assert "## Matched cost" in out
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("ThreeBody-v0__quickstart__0__")
    assert f"run directory (model, VecNormalize stats, TensorBoard logs): {run_dir}" in out
    for name in ("model.zip", "vecnormalize.pkl", "config.json"):
        assert (run_dir / name).is_file()
    pareto = run_dir / "evaluation" / "pareto.png"
    assert str(pareto) in out and pareto.read_bytes()[:4] == b"\x89PNG"
