"""What a policy does: the step it chooses over an episode, next to the timescale rule's; and
each controller's picture of an episode (``--pictures``).

For one held-out start the policy and the timescale rule (at the matched-cost eta when the
evaluation found one) each play an episode; per decision we record the simulated time, the
mean integrator step over the decision (``delta t / delta steps`` from the env's info) and the
smallest pair separation at the decision's end (from the env's propagator). Decisions where
the separation falls below ``ENCOUNTER_FRACTION`` of the start's smallest separation are marked
as close encounters. ``steps.png`` (step and separation against time, two panels) and
``steps.csv`` (the traces) go into the evaluation's output directory.

Environments whose info has no ``t``/``steps`` or no propagator (e.g. CrossEntropy-v0) get no
plot. matplotlib is used through ``matplotlib.figure.Figure`` only (no global backend switch).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stepgym.agents.domains import Domain
from stepgym.agents.envs import make_env
from stepgym.agents.policies import Policy
from stepgym.agents.report import write_csv
from stepgym.agents.rollout import Contender, contender_env, run_episode

logger = logging.getLogger(__name__)

ENCOUNTER_FRACTION = 0.1
"""A decision ends in a close encounter when the smallest pair separation is below this
fraction of the smallest separation at the start."""
RULE = "timescale"
"""The rule drawn next to the policy."""


@dataclass
class StepTrace:
    """One episode, decision by decision."""

    label: str
    t: list[float] = field(default_factory=list)
    """Simulated time at the end of each decision."""
    step: list[float] = field(default_factory=list)
    """Mean integrator step over the decision."""
    separation: list[float] = field(default_factory=list)
    """Smallest pair distance at the decision's end."""
    start_separation: float = math.nan
    """Smallest pair distance at reset."""

    def encounters(self, fraction: float = ENCOUNTER_FRACTION) -> np.ndarray:
        """Boolean mask of the decisions that end in a close encounter."""
        return np.asarray(self.separation) < fraction * self.start_separation


def _separation(env: Any) -> float:
    propagator = getattr(env.unwrapped, "propagator", None)
    if propagator is None:
        return math.nan
    return float(propagator.timescale_and_separation()[1])


def trace_episode(env: Any, policy: Policy, seed: int, label: str) -> StepTrace | None:
    """Play one episode of ``policy`` on ``env`` from ``seed``; None if the env's info does
    not report time and steps (not a step-size integration)."""
    bind = getattr(policy, "bind", None)
    if callable(bind):
        bind(env)
    observe = getattr(policy, "observe_info", None)
    observation, info = env.reset(seed=seed)
    if "t" not in info or "steps" not in info:
        return None
    trace = StepTrace(label, start_separation=_separation(env))
    t, steps, state = float(info["t"]), float(info["steps"]), None
    episode_start = np.ones((1,), dtype=bool)
    done = False
    while not done:
        action, state = policy.predict(observation, state, episode_start, deterministic=True)
        episode_start = np.zeros((1,), dtype=bool)
        observation, _, terminated, truncated, info = env.step(action)
        if callable(observe):
            observe(info)
        done = bool(terminated or truncated)
        taken = float(info["steps"]) - steps
        if taken > 0:
            trace.t.append(float(info["t"]))
            trace.step.append((float(info["t"]) - t) / taken)
            trace.separation.append(_separation(env))
        t, steps = float(info["t"]), float(info["steps"])
    return trace


def plot_steps(traces: list[StepTrace], path: Path, title: str) -> Path:
    """Step and separation against time, close encounters shaded; saved as ``path``."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 5.5), constrained_layout=True)
    step_axes, separation_axes = figure.subplots(2, 1, sharex=True)
    colors = ("tab:blue", "tab:orange", "tab:green", "tab:red")
    for trace, color in zip(traces, colors, strict=False):
        step_axes.plot(trace.t, trace.step, color=color, label=trace.label, lw=1.2)
        separation_axes.plot(trace.t, trace.separation, color=color, lw=1.0)
        mask = trace.encounters()
        if mask.any():
            times = np.asarray(trace.t)[mask]
            separation_axes.plot(times, np.asarray(trace.separation)[mask], "x", color=color)
            for when in times:  # one thin band per close-encounter decision
                step_axes.axvline(when, color=color, alpha=0.15, lw=3)
        separation_axes.axhline(
            ENCOUNTER_FRACTION * trace.start_separation, color=color, ls=":", lw=0.8
        )
    step_axes.set_yscale("log")
    step_axes.set_ylabel("mean step per decision")
    step_axes.legend(loc="best", fontsize=8)
    step_axes.set_title(title, fontsize=10)
    separation_axes.set_yscale("log")
    separation_axes.set_ylabel("min pair separation")
    separation_axes.set_xlabel("simulated time")
    figure.text(
        0.01,
        0.01,
        f"bands / x: close encounters (separation < {ENCOUNTER_FRACTION:g} x the start's)",
        fontsize=7,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def trace_rows(traces: list[StepTrace]) -> list[dict[str, Any]]:
    """The traces as CSV rows (controller, decision, t, step, separation, encounter)."""
    rows = []
    for trace in traces:
        for index, (t, step, separation, close) in enumerate(
            zip(trace.t, trace.step, trace.separation, trace.encounters(), strict=True)
        ):
            rows.append(
                {
                    "controller": trace.label,
                    "decision": index + 1,
                    "t": t,
                    "step": step,
                    "separation": separation,
                    "encounter": bool(close),
                }
            )
    return rows


def save_step_plot(
    runs: Mapping[str, tuple[Any, Policy]], seed: int, out_dir: Path, title: str
) -> dict[str, Path]:
    """Trace each ``label -> (env, policy)`` on ``seed`` and write steps.png and steps.csv;
    nothing (an empty dict) when the env does not report steps. Closes the envs."""
    traces = []
    for label, (env, policy) in runs.items():
        try:
            trace = trace_episode(env, policy, seed, label)
        finally:
            env.close()
        if trace is None:
            logger.info("%s reports no time/steps in its info: no step plot", label)
            return {}
        traces.append(trace)
    return {
        "steps_png": plot_steps(traces, out_dir / "steps.png", title),
        "steps_csv": write_csv(trace_rows(traces), out_dir / "steps.csv"),
    }


PICTURES_DIR = "pictures"


def check_renders(env_id: str, kwargs: dict[str, Any]) -> None:
    """Fail before any episode if ``env_id`` cannot render pictures (``--pictures``)."""
    env = make_env(env_id, {**kwargs, "render_mode": "rgb_array"})
    env.close()


def save_pictures(
    env_id: str, contenders: list[Contender], domain: Domain, seed: int, out_dir: Path
) -> dict[str, Path]:
    """Replay the first held-out episode of every controller with ``render_mode="rgb_array"``
    and save the env's final picture as ``pictures/<controller>.png``."""
    from matplotlib.image import imsave

    files: dict[str, Path] = {}
    for contender in contenders:
        env = contender_env(env_id, contender, {"render_mode": "rgb_array"})
        try:
            run_episode(env, contender.policy, seed, domain)
            frame = env.render()
        finally:
            env.close()
        name = re.sub(r"[^A-Za-z0-9.=+-]+", "_", contender.label).strip("_")
        path = out_dir / PICTURES_DIR / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        imsave(path, np.asarray(frame))
        files[f"picture:{contender.label}"] = path
    return files
