"""Shared helpers of the experiment scripts: print each command, run it, collect results.

Every script prints the exact ``python -m stepgym ...`` commands it runs (``--dry-run`` only
prints them) and writes a Markdown report under ``results/`` that quotes those commands and
the tables the commands wrote.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"


def parser(description: str) -> argparse.ArgumentParser:
    """Options every experiment script takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--dry-run", action="store_true", help="only print the commands")
    p.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "experiments")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--results-dir", type=Path, default=RESULTS, help="where <name>.md goes")
    p.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply training steps and episode counts (e.g. 0.1 for a smoke run)",
    )
    return p


def scaled(value: int, scale: float, minimum: int = 1) -> int:
    return max(minimum, round(value * scale))


_TRAINED: dict[str, Path] = {}
"""Run directory that each ``train`` command of this process created, by experiment name."""


def stepgym(args: Sequence[str], dry_run: bool, log: list[str]) -> None:
    """Print and (unless dry_run) run ``python -m stepgym ARGS``; stop on failure."""
    args = [str(a) for a in args]
    command = [sys.executable, "-m", "stepgym", *args]
    shown = "python -m stepgym " + " ".join(shlex.quote(a) for a in args)
    log.append(shown)
    print(f"$ {shown}", flush=True)
    if dry_run:
        return
    trained = _train_target(args)
    before = set(trained[0].glob(f"*__{trained[1]}__*")) if trained else set()
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT)
    print(f"# finished in {time.perf_counter() - start:.0f} s (exit {result.returncode})")
    if result.returncode != 0:
        sys.exit(result.returncode)
    if trained:
        # Remember the directory this run made, so that another run of the same experiment
        # finishing meanwhile is never mistaken for ours.
        made = set(trained[0].glob(f"*__{trained[1]}__*")) - before
        if len(made) == 1:
            _TRAINED[trained[1]] = made.pop()


def _train_target(args: list[str]) -> tuple[Path, str] | None:
    """(runs dir, experiment name) of a ``train`` command, or None for other commands."""
    if not args or args[0] != "train":
        return None

    def option(name: str, default: str) -> str:
        return args[args.index(name) + 1] if name in args[:-1] else default

    runs_dir = Path(option("--runs-dir", "runs"))
    return (runs_dir if runs_dir.is_absolute() else ROOT / runs_dir), option("--exp-name", "ppo")


def latest_run(runs_dir: Path, exp_name: str) -> Path:
    """The run directory of ``exp_name``: the one this process trained, else the newest."""
    if exp_name in _TRAINED:
        return _TRAINED[exp_name]
    runs = sorted(runs_dir.glob(f"*__{exp_name}__*"), key=lambda p: p.stat().st_mtime)
    if not runs:
        return runs_dir / f"<run of {exp_name}>"
    return runs[-1]


def timescale_env(integrator: str, reward: str, cost_weight: float | list[float]) -> dict:
    """ThreeBody-v0 driven by the dimensionless step eta, one decision per slice."""
    return {
        "integrator": integrator,
        "step_mode": "timescale",
        "decision": "slice",
        "reward": reward,
        "cost_weight": cost_weight,
    }


def timescale_train(
    env: dict,
    exp_name: str,
    args: argparse.Namespace,
    total_timesteps: int = 800_000,
    log_std_init: float = -1.0,
    gamma: float = 0.995,
) -> list[object]:
    """The ``stepgym train`` arguments of the three-body timescale experiments."""
    return [
        "train",
        "--env-kwargs",
        kwargs(**env),
        "--exp-name",
        exp_name,
        "--total-timesteps",
        scaled(total_timesteps, args.scale),
        "--n-envs",
        8,
        "--n-steps",
        256,
        "--batch-size",
        512,
        "--gamma",
        gamma,
        "--log-std-init",
        log_std_init,
        "--eval-freq",
        scaled(100_000, args.scale),
        "--n-eval-episodes",
        20,
        "--torch-threads",
        1,
        "--seed",
        args.seed,
        "--runs-dir",
        args.runs_dir,
    ]


def kwargs(**values: object) -> str:
    """Env keyword arguments as the JSON string --env-kwargs takes."""
    return json.dumps(values)


def write_report(
    name: str,
    title: str,
    commands: list[str],
    sections: list[tuple[str, Path]],
    notes: str = "",
    scale: float = 1.0,
    results_dir: Path = RESULTS,
    plots: Sequence[Path] = (),
) -> Path:
    """results/<name>.md: the commands, then each (heading, Markdown file) section; each of
    ``plots`` is copied beside it as <name>_pareto[_k].png."""
    results_dir.mkdir(parents=True, exist_ok=True)
    for index, plot in enumerate(plots):
        if plot.is_file():
            copy = results_dir / f"{name}_pareto{'' if index == 0 else f'_{index + 1}'}.png"
            shutil.copyfile(plot, copy)
            notes += f"\n\nPareto plot: `{copy.name}` (from {plot})."
    if scale != 1.0:
        notes += f"\n\nRun at --scale {scale} of the full budget: a reduced run, not the protocol."
    lines = [f"# {title}", "", notes, "", "## Commands", "", "```bash", *commands, "```", ""]
    for heading, path in sections:
        lines += [f"## {heading}", ""]
        if path.is_file():
            body = path.read_text().splitlines()
            lines += [line for line in body if not line.startswith("# ")]
        else:
            lines.append(f"(not produced: {path} is missing)")
        lines.append("")
    out = results_dir / f"{name}.md"
    # paths relative to the repository, so the commands run from any checkout
    out.write_text("\n".join(lines).replace(f"{ROOT}/", ""))
    print(f"wrote {out}")
    return out
