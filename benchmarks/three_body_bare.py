"""Bare-REBOUND twins of what ThreeBody-v0 does, and the interleaved timing, for
``bench_three_body.py`` (imported from the script's own folder)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

import rebound

from stepgym.threebody.initial_conditions import SEED_PAPER_SLICE


def bare_copy(env: Any, integrator: str) -> rebound.Simulation:
    sim = rebound.Simulation()
    for p in env.propagator.sim.particles:
        sim.add(m=p.m, x=p.x, y=p.y, z=p.z, vx=p.vx, vy=p.vy, vz=p.vz)
    sim.integrator = integrator
    return sim


def apply_setting(sim: rebound.Simulation, integrator: str, setting: float) -> None:
    if integrator == "ias15":
        sim.integrator.epsilon = setting
    elif integrator == "bs":
        sim.integrator.eps_rel = sim.integrator.eps_abs = setting
    else:
        sim.dt = setting


def interleaved_medians(runs: Sequence[Callable[[], float]], repeats: int) -> list[float]:
    """The median time of each run over ``repeats``, every run once per repeat in turn (so
    that machine noise hits all alike)."""
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for run, run_times in zip(runs, times, strict=True):
            run_times.append(run())
    return [statistics.median(run_times) for run_times in times]


def run_episode(env: Any, action: Any) -> dict[str, Any]:
    """Step ``env`` with ``action`` until the episode ends; the last info."""
    done = False
    while not done:
        _, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
    return info


def legacy_rule_to(propagator: Any, t_end: float, eta: float) -> int:
    """The per-step Python loop as it was before the compiled rules (REBOUND's Python wrapper
    ``sim.steps``, the timescale read through ParticleView), for comparison only."""
    sim, scheme, view = propagator.sim, propagator.scheme, propagator.view
    done_within = 1e-13 * max(1.0, abs(t_end))
    steps0 = sim.steps_done
    while t_end - sim.t > done_within:
        remaining = t_end - sim.t
        dt = eta * view.timescale(1.0)
        scheme.apply_step(sim, min(dt, remaining))
        sim.steps(1)
    return int(sim.steps_done - steps0)


def bare_slices(
    env: Any, integrator: str, setting: float, decisions: int, per_slice: bool
) -> Callable[[], int]:
    """A bare copy of ``env``'s system to integrate over the slices inexactly, as the env
    does (``per_slice``: to each slice end not yet passed; else in one integrate)."""
    sim = bare_copy(env, integrator)
    apply_setting(sim, integrator, setting)

    def run() -> int:
        if per_slice:
            for k in range(1, decisions + 1):
                if sim.t < k * SEED_PAPER_SLICE:
                    sim.integrate(k * SEED_PAPER_SLICE, exact_finish_time=0)
        else:
            sim.integrate(decisions * SEED_PAPER_SLICE, exact_finish_time=0)
        return int(sim.steps_done)

    return run
