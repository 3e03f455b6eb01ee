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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stepgym.agents.sweep import SweepResult

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
SWEEPS = ROOT / "runs" / "experiments" / "sweeps"
"""Where the experiments' sweeps keep their trials (a rerun reuses every finished trial)."""
NOTES = ROOT / "experiments" / "notes"
"""The reading of each result, written by hand after the figures (results/<name>.md quotes it)."""
SEEDS = 5
"""Training seeds of every learning result."""


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
    p.add_argument("--seeds", type=int, default=SEEDS, help="training seeds per configuration")
    p.add_argument("--sweeps-dir", type=Path, default=SWEEPS, help="where the sweeps go")
    p.add_argument("--num-cpus", type=int, default=1, help="CPUs of the local Ray")
    return p


def scaled(value: int, scale: float, minimum: int = 1) -> int:
    return max(minimum, round(value * scale))


def stepgym(args: Sequence[str], dry_run: bool, log: list[str]) -> None:
    """Print and (unless dry_run) run ``python -m stepgym ARGS``; stop on failure."""
    args = [str(a) for a in args]
    command = [sys.executable, "-m", "stepgym", *args]
    shown = "python -m stepgym " + " ".join(shlex.quote(a) for a in args)
    log.append(shown)
    print(f"$ {shown}", flush=True)
    if dry_run:
        return
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT)
    print(f"# finished in {time.perf_counter() - start:.0f} s (exit {result.returncode})")
    if result.returncode != 0:
        sys.exit(result.returncode)


def timescale_env(integrator: str, reward: str, cost_weight: float | list[float]) -> dict:
    """ThreeBody-v0 driven by the dimensionless step eta, one decision per slice."""
    return {
        "integrator": integrator,
        "step_mode": "timescale",
        "decision": "slice",
        "reward": reward,
        "cost_weight": cost_weight,
    }


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


def timescale_sweep(
    name: str,
    env: dict,
    args: argparse.Namespace,
    total_timesteps: int = 400_000,
    gamma: float = 0.995,
    n_episodes: int = 50,
) -> list[str]:
    """The ``stepgym sweep`` arguments of a three-body timescale study: ``args.seeds``
    training seeds of PPO on ``env``, each scored on held-out starts against the timescale
    rule bisected to the policy's median cost."""
    return [
        "sweep",
        "--name",
        name,
        "--grid",
        "seed=" + ",".join(str(s) for s in range(args.seeds)),
        "--train.env-kwargs",
        kwargs(**env),
        "--train.total-timesteps",
        scaled(total_timesteps, args.scale),
        "--train.n-envs",
        8,
        "--train.n-steps",
        256,
        "--train.batch-size",
        512,
        "--train.gamma",
        gamma,
        "--train.log-std-init",
        -1.0,
        "--train.eval-freq",
        scaled(100_000, args.scale),
        "--train.n-eval-episodes",
        10,
        "--n-episodes",
        scaled(n_episodes, args.scale),
        "--match",
        "timescale",
        "--bisect-iters",
        6,
        *sweep_resources(args),
    ]


def sweep_resources(args: argparse.Namespace) -> list[object]:
    """Where the sweep goes and how many CPUs it takes (neither changes a trial's key)."""
    return ["--out-dir", args.sweeps_dir, "--num-cpus", args.num_cpus, "--max-concurrent", 1]


def run_sweep(arguments: Sequence[object], dry_run: bool, log: list[str]) -> SweepResult | None:
    """Print ``python -m stepgym sweep ...`` and (unless dry_run) run it in this process;
    trials a previous run finished are reused, not rerun."""
    from stepgym.agents.sweep import sweep
    from stepgym.cli import parse

    args = [str(a) for a in arguments]
    shown = "python -m stepgym " + " ".join(shlex.quote(a) for a in args)
    log.append(shown.replace(f"{ROOT}/", ""))
    print(f"$ {shown}", flush=True)
    if dry_run:
        return None
    start = time.perf_counter()
    result = sweep(parse(args))
    print(
        f"# {len(result.ran)} trials run, {len(result.trials) - len(result.ran)} reused, "
        f"in {time.perf_counter() - start:.0f} s",
        flush=True,
    )
    if result.errors:
        sys.exit("\n".join(result.errors))
    return result


def ce_sweep(args: argparse.Namespace, n_episodes: int = 5) -> list[object]:
    """The ``stepgym sweep`` arguments of the CrossEntropy radius policy: PPO choosing
    r = tau / rho_a for Adam on the MLP, ``args.seeds`` training seeds, each scored on
    held-out runs (no rule to match: every run costs the same 200 steps)."""
    env = {"model": "mlp", "optimizer": "adam", "action": "radius", "max_steps": 200}
    return [
        "sweep",
        "--name",
        "ce_radius_mlp",
        "--grid",
        "seed=" + ",".join(str(s) for s in range(args.seeds)),
        "--train.env-id",
        "stepgym/CrossEntropy-v0",
        "--train.env-kwargs",
        kwargs(**env),
        "--train.total-timesteps",
        scaled(10_000, args.scale),
        "--train.n-envs",
        2,
        "--train.n-steps",
        200,
        "--train.batch-size",
        100,
        "--train.eval-freq",
        scaled(5_000, args.scale),
        "--train.n-eval-episodes",
        2,
        "--n-episodes",
        scaled(n_episodes, args.scale),
        "--match",
        "",
        *sweep_resources(args),
    ]


def relabel(result: SweepResult, label: str) -> tuple[list[dict], list[dict]]:
    """The aggregated rows of a sweep (and their intervals), each configuration named
    ``label`` (plus its swept parameters other than the seed, if any)."""
    assert result.report is not None
    rows = []
    for row in result.report.rows:
        own = "" if row["configuration"] == "base" else f" ({row['configuration']})"
        rows.append({**row, "configuration": label + own})
    return rows, list(result.report.intervals)


def per_seed(records: Sequence[dict], metric: str = "matched_error_ratio") -> str:
    """'seed 0: 1.2, seed 1: 3.4, ...' of one metric over a sweep's trials."""
    return ", ".join(
        f"seed {r['params'].get('seed')}: {float(r['metrics'].get(metric, float('nan'))):.3g}"
        for r in records
    )


def trial_table(records: Sequence[dict]) -> str:
    """Markdown: one row per trial (per training seed)."""
    from stepgym.agents.report import markdown_table
    from stepgym.agents.sweep_report import TRIAL_COLUMNS, trial_rows

    return markdown_table(trial_rows(records), TRIAL_COLUMNS)


def write_markdown(
    name: str,
    title: str,
    body: str,
    commands: Sequence[str],
    args: argparse.Namespace,
    plot_rows: Sequence[dict] = (),
) -> Path:
    """results/<name>.md: the title, the reading of the figures written after looking at them
    (``experiments/notes/<name>.md``, if there is one), the generated body (tables), the
    commands; with ``plot_rows`` (aggregated sweep rows) also <name>.png, their matched-cost
    ratios with intervals."""
    from stepgym.agents.sweep_report import ratio_plot

    results_dir: Path = args.results_dir
    results_dir.mkdir(parents=True, exist_ok=True)
    notes = NOTES / f"{name}.md"
    lines = [f"# {title}", ""]
    if notes.is_file():
        lines += [notes.read_text().strip(), ""]
    lines += [body.strip(), ""]
    if args.scale != 1.0:
        lines += [f"Run at --scale {args.scale} of the full budget: a smoke run.", ""]
    if plot_rows:
        plot = ratio_plot(list(plot_rows), results_dir / f"{name}.png")
        lines += [f"![{name}]({plot.name})", ""]
    script = " ".join(["python", f"experiments/{Path(sys.argv[0]).name}", *sys.argv[1:]])
    lines += ["## Commands", "", "```bash", f"{script}  # runs:", *commands, "```", ""]
    out = results_dir / f"{name}.md"
    out.write_text("\n".join(lines).replace(f"{ROOT}/", ""))
    print(f"wrote {out}")
    return out
