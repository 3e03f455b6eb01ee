"""The reproduction framework: a registry of targets and the report each one writes.

A target is one seed-paper claim. It runs at full size or ``quick`` size, returns an
:class:`Outcome` (our figure next to the paper's, the settings and seeds, an optional plot),
and :func:`reproduce` prints it and writes ``<out_dir>/<name>.md``. Adding a target is one
module in ``stepgym/reproduce/`` that registers a :class:`Target` in :data:`TARGETS`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stepgym.registry import Registry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Context:
    """What a target may read: its size, seeds and where files go."""

    quick: bool
    """Run the small size (tests, smoke runs)."""
    seeds: int | None
    """Training seeds asked for (None: the target's default)."""
    out_dir: Path
    """Where <name>.md and <name>.png go."""
    work_dir: Path
    """Where sweeps and other intermediate files go."""
    num_cpus: int | None = None
    """CPUs of the local Ray for targets that sweep."""

    def n_seeds(self, full: int, quick: int = 2) -> int:
        return self.seeds if self.seeds is not None else (quick if self.quick else full)

    def plot_path(self, name: str) -> Path:
        return self.out_dir / f"{name}.png"


@dataclass
class Outcome:
    """What a target measured, ready to be written as Markdown."""

    title: str
    """Heading of the report."""
    claim: str
    """The paper's claim being reproduced, with its reference."""
    settings: str
    """The settings, one Markdown paragraph or list."""
    seeds: list[int]
    """The seeds used."""
    table: str
    """A Markdown table: our figures next to the paper's."""
    verdict: str
    """One or two sentences: does our figure match the paper's, and where not, why."""
    notes: str = ""
    """Further Markdown (adaptations, explanations)."""
    plot: Path | None = None
    """A plot written by the target, if any."""
    extra_files: dict[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """One reproducible claim."""

    name: str
    doc: str
    """One line: what the target reproduces."""
    run: Callable[[Context], Outcome]


TARGETS: Registry[Target] = Registry("reproduction target")


def register(
    name: str, doc: str
) -> Callable[[Callable[[Context], Outcome]], Callable[..., Outcome]]:
    """Decorator registering ``run(context) -> Outcome`` as the target ``name``."""

    def decorate(run: Callable[[Context], Outcome]) -> Callable[[Context], Outcome]:
        TARGETS.add(name, Target(name, doc, run))
        return run

    return decorate


@dataclass
class ReproduceResult:
    """The printed text of a target and the files written."""

    text: str
    files: dict[str, Path]
    outcome: Outcome
    seconds: float


def command_line(name: str, quick: bool, seeds: int | None) -> str:
    parts = ["stepgym reproduce", name]
    if quick:
        parts.append("--quick")
    if seeds is not None:
        parts.append(f"--seeds {seeds}")
    return " ".join(parts)


def markdown(name: str, outcome: Outcome, command: str, seconds: float, out_dir: Path) -> str:
    """The report of one target."""
    lines = [
        f"# {outcome.title}",
        "",
        f"Reproduces: {outcome.claim}",
        "",
        f"Command: `{command}` ({seconds:.0f} s on this machine).",
        "",
        f"Seeds: {', '.join(str(s) for s in outcome.seeds) or 'none (deterministic)'}.",
        "",
        "## Settings",
        "",
        outcome.settings.strip(),
        "",
        "## Ours next to the paper's",
        "",
        outcome.table.strip(),
        "",
        outcome.verdict.strip(),
        "",
    ]
    if outcome.notes:
        lines += ["## Notes", "", outcome.notes.strip(), ""]
    if outcome.plot is not None:
        lines += [f"![{name}]({_relative(outcome.plot, out_dir)})", ""]
    return "\n".join(lines)


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def run_target(name: str, context: Context) -> ReproduceResult:
    """Run target ``name``; write ``<out_dir>/<name>.md``; return the printed text."""
    target = TARGETS.get(name)
    context.out_dir.mkdir(parents=True, exist_ok=True)
    context.work_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    outcome = target.run(context)
    seconds = time.perf_counter() - start
    command = command_line(name, context.quick, context.seeds)
    text = markdown(name, outcome, command, seconds, context.out_dir)
    path = context.out_dir / f"{name}.md"
    path.write_text(text)
    files = {"report": path, **outcome.extra_files}
    if outcome.plot is not None:
        files["plot"] = outcome.plot
    logger.info("reproduce %s: %.0f s, report %s", name, seconds, path)
    return ReproduceResult(text, files, outcome, seconds)


def figure_axes(figsize: tuple[float, float], ncols: int = 1) -> tuple[Any, Any]:
    """A bare matplotlib ``Figure`` and its axes (``ncols`` side by side): drawn with its own
    Agg canvas when saved, so no pyplot state and no global backend switch."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize)
    return figure, figure.subplots(1, ncols)


def save_figure(figure: Any, path: Path, legend_size: float | None = None) -> Path:
    """Grid every axes (log-friendly), add the legends (``legend_size``; None: none), lay out
    and save ``figure`` to ``path`` at 110 dpi."""
    for axes in figure.axes:
        axes.grid(True, which="both", alpha=0.3)
        if legend_size is not None:
            axes.legend(fontsize=legend_size)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path
