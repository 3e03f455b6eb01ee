"""Overhead of ThreeBody-v0 against bare REBOUND doing the same integration, side by side.

(a) slice mode: one decision per 0.1 yr, constant raw setting, against one bare
    ``sim.integrate`` over the same simulated interval with the same settings (ratio, target
    <= 1.3x);
(b) fine mode: microseconds per integrator step against a bare Python loop of
    ``sim.steps(1)`` (difference, target <= 10 us per step);
(c) step_mode="timescale", leapfrog, eta = 2e-3, seed-paper starts: decisions per second of
    the compiled per-step loop against the pure-Python reference loop (target >= 10x), and
    the compiled path's cost per integrator step against REBOUND's bare ``sim.steps(n)`` over
    the same number of steps on the same system (target <= 2x; the propagator's advance and
    the env's one compiled call per decision, ``stepgym.threebody.compiled_decision``);
(d) IAS15 and BS, raw slice mode with ``exact_slice_end=False``, seed-paper starts, against a
    bare loop of ``sim.integrate(t_k, exact_finish_time=0)`` over the same slices (target
    <= 1.3x); beside it the propagator's advances alone against the same loop, and the env's
    cost per decision beyond them (env minus the propagator's advances; the env itself makes
    one compiled call per decision).

Measurements alternate the compared runs and report the median of the repeats. Times are
CPU time of this process (``time.process_time``), so that other processes sharing the
machine do not enter the ratios; ``--wall`` measures wall-clock time instead.

    python benchmarks/bench_three_body.py [--repeats 7] [--sections abcd] [--wall]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
from three_body_bare import (
    apply_setting,
    bare_copy,
    bare_slices,
    interleaved_medians,
    legacy_rule_to,
    run_episode,
)

import stepgym  # noqa: F401 - registers the environments
from stepgym.threebody.initial_conditions import SEED_PAPER_SLICE

SLICE_CASES = [  # (ic_set, integrator, raw setting, decisions)
    ("seed_paper", "leapfrog", 1e-4, 20),
    ("seed_paper", "whfast", 1e-4, 20),
    ("seed_paper", "saba", 1e-4, 10),
    ("seed_paper", "ias15", 1e-9, 100),
    ("seed_paper", "bs", 1e-8, 100),
    ("pythagorean", "ias15", 1e-9, 20),
    ("pythagorean", "bs", 1e-8, 20),
]
FINE_CASES = [  # (integrator, step_mode, setting, steps_per_decision)
    ("leapfrog", "raw", 1e-4, 1),
    ("leapfrog", "raw", 1e-4, 10),
    ("leapfrog", "timescale", 1e-3, 1),
    ("leapfrog", "timescale", 1e-3, 10),
    ("ias15", "raw", 1e-9, 10),
    ("ias15", "timescale", 1e-2, 10),
]
FINE_STEPS = 20_000
clock = time.process_time  # --wall: time.perf_counter


def _env(**kwargs: Any) -> Any:
    env = gym.make("stepgym/ThreeBody-v0", **kwargs).unwrapped
    env.reset(seed=0)
    return env


def bench_slice(ic_set: str, integrator: str, setting: float, decisions: int, repeats: int) -> str:
    horizon = decisions * SEED_PAPER_SLICE
    kwargs = dict(integrator=integrator, ic_set=ic_set, horizon=horizon, energy_error_limit=1e9)
    final = {"t": 0.0, "steps": 0}

    def env_run() -> float:
        env = _env(**kwargs)
        action = env.action_map.encode(setting)
        start = clock()
        info = run_episode(env, action)
        elapsed = clock() - start
        final.update(t=info["t"], steps=info["steps"], setting=info["setting"])
        return elapsed

    env_run()  # warm up and learn the decoded setting and the end time
    end_time, decoded = final["t"], final["setting"]

    def bare_run(per_slice: bool) -> float:
        sim = bare_copy(_env(**kwargs), integrator)
        apply_setting(sim, integrator, decoded)
        exact = 1 if integrator in ("ias15", "bs") else 0
        start = clock()
        if per_slice:  # the same stops a user needs to act once per slice
            for k in range(1, decisions + 1):
                sim.integrate(min(k * SEED_PAPER_SLICE, end_time), exact_finish_time=exact)
        else:
            sim.integrate(end_time, exact_finish_time=exact)
        elapsed = clock() - start
        final["bare_steps" if not per_slice else "loop_steps"] = sim.steps_done
        return elapsed

    runs = (env_run, lambda: bare_run(False), lambda: bare_run(True))
    env_s, bare_s, loop_s = interleaved_medians(runs, repeats)
    return (
        f"| {ic_set:11s} | {integrator:8s} | {setting:7.0e} | {decisions:4d} | "
        f"{final['steps']:7d} | {final['bare_steps']:7d} | {env_s * 1e3:8.2f} | "
        f"{bare_s * 1e3:8.2f} | {env_s / bare_s:6.2f}x | {loop_s * 1e3:8.2f} | "
        f"{env_s / loop_s:5.2f}x |"
    )


def bench_fine(integrator: str, step_mode: str, setting: float, spd: int, repeats: int) -> str:
    kwargs = dict(
        integrator=integrator, step_mode=step_mode, decision="fine", steps_per_decision=spd,
        ic_set="seed_paper", horizon=1e9, energy_error_limit=1e9, escape_factor=1e9,
    )  # fmt: skip
    decisions = FINE_STEPS // spd
    counts = {"env": 0, "bare": 0}

    def env_run() -> float:
        env = _env(**kwargs)
        action = env.action_map.encode(setting)
        start = clock()
        for _ in range(decisions):
            env.step(action)
        elapsed = clock() - start
        counts["env"] = env.last_info["steps"]
        return elapsed

    def bare_run() -> float:
        env = _env(**kwargs)
        sim = bare_copy(env, integrator)
        if step_mode == "raw":
            apply_setting(sim, integrator, setting)
        else:  # the bare loop at the first step the rule would take
            if integrator == "ias15":
                sim.integrator.epsilon = 0.0
            sim.dt = setting * env.propagator.timescale()
        steps = sim.steps
        start = clock()
        for _ in range(FINE_STEPS):
            steps(1)
        elapsed = clock() - start
        counts["bare"] = sim.steps_done
        return elapsed

    env_s, bare_s = interleaved_medians((env_run, bare_run), repeats)
    env_us, bare_us = env_s / counts["env"] * 1e6, bare_s / counts["bare"] * 1e6
    return (
        f"| {integrator:8s} | {step_mode:9s} | {spd:4d} | {env_us:7.2f} | {bare_us:7.2f} | "
        f"{env_us - bare_us:+7.2f} |"
    )


RULE_STARTS = 4  # seed-paper starts (reset seeds) per repeat in (c) and (d)
RULE_DECISIONS = 25  # decisions per start in (c)


def _rule_env(pure_python: bool, **kwargs: Any) -> Any:
    """A timescale-mode env whose propagator uses the compiled loop or the Python one."""
    if pure_python:
        os.environ["STEPGYM_PURE_PYTHON"] = "1"
    try:
        env = gym.make("stepgym/ThreeBody-v0", **kwargs).unwrapped
    finally:
        os.environ.pop("STEPGYM_PURE_PYTHON", None)
    assert env.propagator.compiled is not pure_python
    return env


def _rule_paths(envs: dict[bool, Any], eta: float) -> dict[str, Callable[[int], tuple[float, int]]]:
    """Section (c)'s paths, each ``start -> (seconds, steps)`` over RULE_DECISIONS decisions:
    through the env and the propagator alone (compiled, Python reference, the pre-compiled
    loop), and REBOUND's bare ``sim.steps(n)`` over the compiled env's step count."""
    decoded = envs[False].action_map.decode(envs[False].action_map.encode(eta))
    slice_time = envs[False].config.slice_time
    steps_of_start: dict[int, int] = {}

    def through_env(pure: bool, start: int) -> tuple[float, int]:
        env = envs[pure]
        env.reset(seed=start)
        action = env.action_map.encode(eta)
        begin = clock()
        for _ in range(RULE_DECISIONS):
            env.step(action)
        return clock() - begin, env.last_info["steps"]

    def propagator_only(path: str, start: int) -> tuple[float, int]:
        env = envs[path == "python"]
        env.reset(seed=start)
        propagator, steps = env.propagator, 0
        begin = clock()
        for k in range(1, RULE_DECISIONS + 1):
            if path == "legacy":
                steps += legacy_rule_to(propagator, k * slice_time, decoded)
            else:
                steps += propagator.advance_rule_to(k * slice_time, decoded).work.steps
        return clock() - begin, steps

    def compiled_call(start: int) -> tuple[float, int]:  # what the env's step calls
        env = envs[False]
        env.reset(seed=start)
        decide, steps = env._compiled, 0
        begin = clock()
        for k in range(1, RULE_DECISIONS + 1):
            steps += int(decide(k * slice_time, decoded)[1])  # row entry 1: steps
        return clock() - begin, steps

    def bare(start: int) -> tuple[float, int]:  # REBOUND's own loop, as many steps
        env = envs[False]
        env.reset(seed=start)
        sim = bare_copy(env, "leapfrog")
        sim.dt = decoded * env.propagator.timescale()
        begin = clock()
        sim.steps(steps_of_start[start])
        return clock() - begin, steps_of_start[start]

    for start in range(RULE_STARTS):  # warm up; the step count of each start
        steps_of_start[start] = int(through_env(False, start)[1])
    return {
        "env, compiled rule": lambda start: through_env(False, start),
        "env, Python reference rule": lambda start: through_env(True, start),
        "propagator, compiled rule": lambda start: propagator_only("compiled", start),
        "propagator, Python reference": lambda start: propagator_only("python", start),
        "propagator, pre-compiled loop": lambda start: propagator_only("legacy", start),
        "env's compiled decision call": compiled_call,
        "bare sim.steps(n)": bare,
    }


def _print_rule_tables(median: dict[str, float], steps: dict[str, float]) -> None:
    """Section (c)'s tables: time per decision and per step of each path, then the ratios."""
    decisions = RULE_STARTS * RULE_DECISIONS
    print("| path                          | us/decision | decisions/s | steps | us/step |")
    print("|-------------------------------|-------------|-------------|-------|---------|")
    for name, seconds in median.items():
        print(
            f"| {name:29s} | {seconds / decisions * 1e6:11.1f} | {decisions / seconds:11.0f} | "
            f"{steps[name]:5.0f} | {seconds / steps[name] * 1e6:7.3f} |"
        )
    per_step = {name: median[name] / steps[name] for name in median}
    bare_step = per_step["bare sim.steps(n)"]
    print()
    print("| ratio                                                      | value  |")
    print("|------------------------------------------------------------|--------|")
    for label, value in (
        ("decisions/s, env: compiled / Python reference (>= 10x)",
         median["env, Python reference rule"] / median["env, compiled rule"]),
        ("decisions/s, propagator: compiled / Python reference",
         median["propagator, Python reference"] / median["propagator, compiled rule"]),
        ("decisions/s, propagator: compiled / pre-compiled loop",
         median["propagator, pre-compiled loop"] / median["propagator, compiled rule"]),
        ("per step, propagator compiled / bare sim.steps (<= 2x)",
         per_step["propagator, compiled rule"] / bare_step),
        ("per step, env's compiled decision call / bare sim.steps",
         per_step["env's compiled decision call"] / bare_step),
        ("per step, env compiled / bare sim.steps",
         per_step["env, compiled rule"] / bare_step),
    ):  # fmt: skip
        print(f"| {label:58s} | {value:5.2f}x |")
    call = median["env's compiled decision call"]
    python_cost = (median["env, compiled rule"] - call) / decisions
    print(f"the env's own Python per decision (env minus its compiled decision call): "
          f"{python_cost * 1e6:.1f} us")  # fmt: skip


def bench_rule_decisions(eta: float, repeats: int) -> None:
    kwargs = dict(
        integrator="leapfrog", step_mode="timescale", horizon=1e9, energy_error_limit=1e9,
        escape_factor=1e9,
    )  # fmt: skip
    paths = _rule_paths({pure: _rule_env(pure, **kwargs) for pure in (False, True)}, eta)
    times: dict[str, list[float]] = {name: [] for name in paths}
    steps: dict[str, float] = {}
    for _ in range(repeats):
        for name, path in paths.items():  # interleaved: every path once per repeat
            runs = [path(start) for start in range(RULE_STARTS)]
            times[name].append(sum(r[0] for r in runs))
            steps[name] = sum(r[1] for r in runs)
    _print_rule_tables({name: statistics.median(values) for name, values in times.items()}, steps)


def _over_starts(env: Any, prepare: Callable[[], Callable[[], int]]) -> tuple[float, int]:
    """(seconds, steps) of ``prepare()()`` from each of RULE_STARTS resets of ``env``, timing
    only the callable ``prepare`` returns (it returns a step count)."""
    elapsed, steps = 0.0, 0
    for start in range(RULE_STARTS):
        env.reset(seed=start)
        run = prepare()
        begin = clock()
        steps += run()
        elapsed += clock() - begin
    return elapsed, steps


def bench_inexact_slices(integrator: str, setting: float, decisions: int, repeats: int) -> str:
    kwargs = dict(
        integrator=integrator, exact_slice_end=False, horizon=decisions * SEED_PAPER_SLICE,
        energy_error_limit=1e9, escape_factor=1e9,
    )  # fmt: skip
    env = gym.make("stepgym/ThreeBody-v0", **kwargs).unwrapped
    action = env.action_map.encode(setting)
    decoded = env.action_map.decode(action)
    counts = {"env": 0, "bare": 0, "single": 0}

    def env_run() -> float:
        elapsed, counts["env"] = _over_starts(
            env, lambda: lambda: run_episode(env, action)["steps"]
        )
        return elapsed

    def bare_run(per_slice: bool) -> float:
        prepare = lambda: bare_slices(env, integrator, decoded, decisions, per_slice)  # noqa: E731
        elapsed, counts["bare" if per_slice else "single"] = _over_starts(env, prepare)
        return elapsed

    def advances() -> int:  # the same advances without the env around them
        for k in range(1, decisions + 1):
            env.propagator.advance_raw_to(k * SEED_PAPER_SLICE, decoded, exact=False)
        return 0

    def propagator_run() -> float:
        return _over_starts(env, lambda: advances)[0]

    runs = (env_run, propagator_run, lambda: bare_run(True), lambda: bare_run(False))
    env_s, prop_s, loop_s, single_s = interleaved_medians(runs, repeats)
    per_decision = (env_s - prop_s) / (RULE_STARTS * decisions) * 1e6
    return (
        f"| {integrator:5s} | {setting:7.0e} | {decisions:4d} | {counts['env']:6d} | "
        f"{counts['bare']:6d} | {env_s * 1e3:7.2f} | {loop_s * 1e3:7.2f} | "
        f"{env_s / loop_s:5.2f}x | {single_s * 1e3:7.2f} | {env_s / single_s:5.2f}x | "
        f"{prop_s / loop_s:5.2f}x | {per_decision:6.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--sections", default="abcd", help="which of (a)-(d) to run")
    parser.add_argument("--wall", action="store_true", help="wall-clock instead of CPU time")
    args = parser.parse_args()
    global clock
    if args.wall:
        clock = time.perf_counter
    if "a" in args.sections:
        bench_raw_slices(args.repeats)
    if "b" in args.sections:
        bench_fine_modes(args.repeats)
    if "c" in args.sections:
        print()
        print("(c) timescale mode, leapfrog, eta = 2e-3, seed-paper starts: compiled per-step")
        print(
            f"    loop vs the Python reference ({RULE_STARTS} starts x {RULE_DECISIONS} decisions)"
        )
        bench_rule_decisions(2e-3, args.repeats)
    if "d" in args.sections:
        print()
        print("(d) raw slice mode with exact_slice_end=False, seed-paper starts, vs a bare loop of")
        print("    sim.integrate(t_k, exact_finish_time=0) over the same slices, and one integrate")
        print("    (prop. ratio: the propagator's advances alone against the loop; env us/dec.:")
        print("    env minus the propagator's advances, per decision)")
        print("| integ | setting | dec. | env st | bare st | env ms  | loop ms | ratio  "
              "| one ms  | ratio  | prop.  | env us/dec. |")  # fmt: skip
        print("|-------|---------|------|--------|---------|---------|---------|--------"
              "|---------|--------|--------|-------------|")  # fmt: skip
        for integrator, setting in (("ias15", 1e-9), ("ias15", 1e-12), ("bs", 1e-8), ("bs", 1e-12)):
            print(bench_inexact_slices(integrator, setting, 100, args.repeats), flush=True)


def bench_raw_slices(repeats: int) -> None:
    print("(a) slice mode (0.1 yr per decision, constant raw setting) vs bare REBOUND:")
    print("    one sim.integrate over the whole interval, and a loop of sim.integrate to each")
    print("    decision time (the same stops; isolates the environment's own overhead)")
    print(
        "| ic_set      | integr.  | setting | dec. | env stp | bare stp | env ms   "
        "| bare ms  | ratio   | loop ms  | ratio  |"
    )
    print(
        "|-------------|----------|---------|------|---------|----------|----------"
        "|----------|---------|----------|--------|"
    )
    for case in SLICE_CASES:
        print(bench_slice(*case, repeats), flush=True)


def bench_fine_modes(repeats: int) -> None:
    print()
    print("(b) fine mode: us per integrator step vs a bare Python loop of sim.steps(1)")
    print("| integr.  | step_mode | spd  | env us  | bare us | added   |")
    print("|----------|-----------|------|---------|---------|---------|")
    for case in FINE_CASES:
        print(bench_fine(*case, repeats), flush=True)


if __name__ == "__main__":
    main()
