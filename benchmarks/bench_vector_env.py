"""The native vector env against REBOUND's own loop and against SB3's DummyVecEnv, side by side.

(a) fine mode (``decision="fine"``, ``steps_per_decision=1``, ``step_mode="timescale"``,
    leapfrog, seed-paper starts) through the vector env at N = 64: microseconds per env step
    minus the bare integrator step, measured as REBOUND's own loop (``sim.steps(n)``) over
    the same number of steps on copies of the same 64 systems (target <= 5 us);
(b) env steps/s of the same N copies through the Gymnasium vector env, through its SB3
    adapter (``NativeVecEnv``) and through SB3's ``DummyVecEnv`` of single envs, in fine
    mode (N = 64) and in the quickstart's slice mode (N = 8);
(c) CrossEntropy-v0 (defaults, N = 8): the same vector env built over its env class against
    DummyVecEnv, to see whether a native vector env pays there;
(d) timescale slice mode (leapfrog, eta = 2e-3, seed-paper starts, as in
    ``bench_three_body.py`` (c)) through the vector env at N = 8 and 64: decisions/s of the batched
    compiled step against the pure-Python reference (``STEPGYM_PURE_PYTHON=1``, copy by copy),
    and the cost per integrator step against REBOUND's bare ``sim.steps(n)`` on copies of the
    same systems;
(e) IAS15 and BS, raw slice mode with ``exact_slice_end=False`` (seed-paper starts, as in
    ``bench_three_body.py`` (d)) through the vector env at N = 64, against a bare loop of
    ``sim.integrate(t_k, exact_finish_time=0)`` over the same slices on copies of the same
    systems (target <= 1.3x).

Measurements alternate within every repeat; medians over repeats are printed. ``--clock cpu``
(default) times with this thread's CPU clock, which other jobs on a shared machine perturb far
less than the wall clock (preemption is not counted); ``--clock wall`` uses the wall clock.
(a) also runs the copy-by-copy path (the batched step switched off) for comparison.

    python benchmarks/bench_vector_env.py [--repeats 7] [--steps 200] [--clock cpu|wall]
        [--sections abcde]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import rebound
from stable_baselines3.common.vec_env import DummyVecEnv

import stepgym  # noqa: F401 - registers the environments
from stepgym.agents.config import QuickstartConfig
from stepgym.agents.quickstart import env_kwargs
from stepgym.agents.vec_adapter import NativeVecEnv
from stepgym.envs.vector import StepSizeVectorEnv, vector_entry_point
from stepgym.threebody.initial_conditions import SEED_PAPER_SLICE

THREE_BODY = "stepgym/ThreeBody-v0"
FINE: dict[str, Any] = {
    "integrator": "leapfrog",
    "step_mode": "timescale",
    "decision": "fine",
    "steps_per_decision": 1,
    "ic_set": "seed_paper",
    "horizon": 1e9,
    "energy_error_limit": 1e9,
    "escape_factor": 1e9,
}
ETA = 1e-2
CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}
clock = time.thread_time


def _action(envs: StepSizeVectorEnv, setting: float) -> np.ndarray:
    unit = envs.envs[0].action_map.encode(setting)
    return np.tile(np.asarray(unit, dtype=np.float32), (envs.num_envs, 1))


def fine_overhead(n: int, steps: int, repeats: int) -> tuple[float, float, float]:
    """(us per env step through the vector env, the same copy by copy, us per bare REBOUND
    step), medians."""
    vector_us: dict[bool, list[float]] = {True: [], False: []}
    bare_us = []
    for _ in range(repeats):
        for batched in (True, False):
            envs = gym.make_vec(THREE_BODY, num_envs=n, **FINE)
            assert isinstance(envs, StepSizeVectorEnv) and envs.batched
            if not batched:
                envs._batch = None  # the copy-by-copy path, for comparison
            envs.reset(seed=0)
            action = _action(envs, ETA)
            bare = [
                _bare_copy(env.propagator.sim, ETA * env.propagator.timescale())
                for env in envs.envs
            ]
            start = clock()
            for _ in range(steps):
                envs.step(action)
            vector_us[batched].append((clock() - start) / (steps * n) * 1e6)
            done = sum(env.last_info["steps"] for env in envs.envs)
            assert done == steps * n, f"{done} integrator steps, expected {steps * n}"
            envs.close()
        start = clock()
        for sim in bare:
            sim.steps(steps)  # REBOUND's own loop
        bare_us.append((clock() - start) / (steps * n) * 1e6)
    median = statistics.median
    return median(vector_us[True]), median(vector_us[False]), median(bare_us)


RULE: dict[str, Any] = {
    "integrator": "leapfrog",
    "step_mode": "timescale",
    "horizon": 1e9,
    "energy_error_limit": 1e9,
    "escape_factor": 1e9,
}


def rule_decisions(n: int, eta: float, decisions: int, repeats: int) -> dict[str, float]:
    """Seconds per decision (medians) of the batched compiled vector env, the pure-Python
    reference vector env and REBOUND's bare loop over as many steps; steps per decision."""
    compiled = gym.make_vec(THREE_BODY, num_envs=n, **RULE)
    os.environ["STEPGYM_PURE_PYTHON"] = "1"
    try:
        python = gym.make_vec(THREE_BODY, num_envs=n, **RULE)
    finally:
        os.environ.pop("STEPGYM_PURE_PYTHON")
    assert isinstance(compiled, StepSizeVectorEnv) and isinstance(python, StepSizeVectorEnv)
    assert compiled.batched and not python.batched
    assert not python.envs[0].propagator.compiled  # type: ignore[attr-defined]
    times: dict[str, list[float]] = {"compiled": [], "python": [], "bare": []}
    steps = 0
    for _ in range(repeats):
        for name, envs in (("compiled", compiled), ("python", python)):
            envs.reset(seed=0)
            action = _action(envs, eta)
            start = clock()
            for _ in range(decisions):
                envs.step(action)
            times[name].append((clock() - start) / (decisions * n))
            done = [env.last_info["steps"] for env in envs.envs]
            steps = steps or sum(done)
            assert sum(done) == steps, "both paths take the same steps"
        compiled.reset(seed=0)
        bare = [
            _bare_copy(env.propagator.sim, eta * env.propagator.timescale())  # type: ignore[attr-defined]
            for env in compiled.envs
        ]
        start = clock()
        for sim, count in zip(bare, done, strict=True):
            sim.steps(count)
        times["bare"].append((clock() - start) / (decisions * n))
    compiled.close()
    python.close()
    result = {name: statistics.median(values) for name, values in times.items()}
    result["steps_per_decision"] = steps / (decisions * n)
    return result


def inexact_slices(
    integrator: str, setting: float, n: int, decisions: int, repeats: int
) -> tuple[float, float]:
    """(vector env seconds, bare loop seconds) over ``decisions`` slices of ``n`` copies."""
    kwargs = {
        "integrator": integrator,
        "exact_slice_end": False,
        "horizon": 2 * decisions * SEED_PAPER_SLICE,  # no episode ends early (a step overshoots)
        "energy_error_limit": 1e9,
        "escape_factor": 1e9,
    }
    envs = gym.make_vec(THREE_BODY, num_envs=n, **kwargs)
    assert isinstance(envs, StepSizeVectorEnv) and envs.batched
    action = _action(envs, setting)
    decoded = envs.envs[0].action_map.decode(action[0])  # type: ignore[attr-defined]
    env_times, bare_times = [], []
    for _ in range(repeats):
        envs.reset(seed=0)
        bare = []
        for env in envs.envs:
            sim = _bare_copy(env.propagator.sim, None, integrator)  # type: ignore[attr-defined]
            if integrator == "ias15":
                sim.integrator.epsilon = decoded
            else:
                sim.integrator.eps_rel = sim.integrator.eps_abs = decoded
            bare.append(sim)
        start = clock()
        for _ in range(decisions):
            envs.step(action)
        env_times.append(clock() - start)
        start = clock()
        for sim in bare:
            for k in range(1, decisions + 1):
                if sim.t < k * SEED_PAPER_SLICE:  # the env's stops: each end not yet passed
                    sim.integrate(k * SEED_PAPER_SLICE, exact_finish_time=0)
        bare_times.append(clock() - start)
        env_steps = sum(env.last_info["steps"] for env in envs.envs)
        assert env_steps == sum(sim.steps_done for sim in bare), "the same steps"
    envs.close()
    return statistics.median(env_times), statistics.median(bare_times)


def _bare_copy(source: Any, dt: float | None, integrator: str = "leapfrog") -> rebound.Simulation:
    """A fresh simulation of ``source``'s particles (``dt`` None: REBOUND's default step)."""
    sim = rebound.Simulation()
    for p in source.particles:
        sim.add(m=p.m, x=p.x, y=p.y, z=p.z, vx=p.vx, vy=p.vy, vz=p.vz)
    sim.integrator = integrator
    if dt is not None:
        sim.dt = dt
    return sim


def throughput(
    makers: dict[str, Callable[[], tuple[Any, Callable[[np.ndarray], Any], int]]],
    action: np.ndarray,
    steps: int,
    repeats: int,
    timer: Callable[[], float] | None = None,
) -> dict[str, float]:
    """Median env steps/s of each (env, step function, n) maker, alternating makers (timed
    with ``timer``, default the chosen clock)."""
    timer = timer or clock
    rates: dict[str, list[float]] = {name: [] for name in makers}
    for _ in range(repeats):
        for name, make in makers.items():
            env, step, n = make()
            start = timer()
            for _ in range(steps):
                step(action)
            rates[name].append(steps * n / (timer() - start))
            env.close()
    return {name: statistics.median(values) for name, values in rates.items()}


def _makers(
    env_id: str, n: int, kwargs: dict[str, Any], vector: Callable[[str], StepSizeVectorEnv]
) -> dict[str, Callable[[], tuple[Any, Callable[[np.ndarray], Any], int]]]:
    def gym_vector() -> tuple[Any, Callable[[np.ndarray], Any], int]:
        envs = vector("NextStep")
        envs.reset(seed=0)
        return envs, envs.step, n

    def adapter() -> tuple[Any, Callable[[np.ndarray], Any], int]:
        venv = NativeVecEnv(vector("SameStep"))
        venv.seed(0)
        venv.reset()
        return venv, venv.step, n

    def dummy() -> tuple[Any, Callable[[np.ndarray], Any], int]:
        venv = DummyVecEnv([lambda: gym.make(env_id, **kwargs) for _ in range(n)])
        venv.seed(0)
        venv.reset()
        return venv, venv.step, n

    return {
        "gymnasium vector env": gym_vector,
        "SB3 NativeVecEnv": adapter,
        "SB3 DummyVecEnv": dummy,
    }


def section_fine(steps: int, repeats: int, clock_name: str) -> None:
    """(a) fine mode: the vector env's overhead per env step over the bare REBOUND step."""
    n = 64
    vector_us, copies_us, bare_us = fine_overhead(n, steps, repeats)
    print(f"(a) fine mode, leapfrog, eta {ETA:g}, N = {n}, {steps} steps per copy, "
          f"{clock_name} clock:")  # fmt: skip
    print(f"    vector env {vector_us:.2f} us per env step, bare REBOUND step {bare_us:.3f} us")
    print(f"    overhead {vector_us - bare_us:.2f} us per env step (target <= 5 us)")
    print(f"    copy by copy (batched step off): {copies_us:.2f} us per env step, overhead "
          f"{copies_us - bare_us:.2f} us")  # fmt: skip


def section_interfaces(steps: int, repeats: int) -> None:
    """(b) env steps/s of the same ThreeBody-v0 copies through each vector interface."""
    print("\n(b) env steps/s (median), same copies through each vector interface:")
    cases: list[tuple[str, int, dict[str, Any], int]] = [
        ("fine mode", 64, FINE, steps),
        ("quickstart slice mode", 8, env_kwargs(QuickstartConfig()), max(steps // 4, 10)),
    ]
    for label, size, kwargs, n_steps in cases:

        def vector(
            mode: str, size: int = size, kwargs: dict[str, Any] = kwargs
        ) -> StepSizeVectorEnv:
            envs = gym.make_vec(THREE_BODY, num_envs=size, autoreset_mode=mode, **kwargs)
            assert isinstance(envs, StepSizeVectorEnv)
            return envs

        probe = vector("NextStep")
        action = _action(probe, ETA)
        probe.close()
        rates = throughput(_makers(THREE_BODY, size, kwargs, vector), action, n_steps, repeats)
        print(f"    ThreeBody-v0 {label}, N = {size}:")
        _print_rates(rates)


def _print_rates(rates: dict[str, float]) -> None:
    dummy = rates["SB3 DummyVecEnv"]
    for name, rate in rates.items():
        print(f"      {name:22s} {rate:9.0f} steps/s  ({rate / dummy:5.2f}x DummyVecEnv)")


def section_cross_entropy(repeats: int) -> None:
    """(c) CrossEntropy-v0: copies batched in one process against SB3's vector envs."""
    from stepgym.envs.cross_entropy import CrossEntropyEnv

    ce_id, ce_n = "stepgym/CrossEntropy-v0", 8
    make_ce = vector_entry_point(CrossEntropyEnv)
    ce_action = np.zeros((ce_n, 1), dtype=np.float32)
    rates = throughput(
        _makers(ce_id, ce_n, {}, lambda mode: make_ce(ce_n, autoreset_mode=mode)),
        ce_action,
        20,
        repeats,
        time.perf_counter,  # torch may run threads of its own: wall clock
    )
    print(f"\n(c) CrossEntropy-v0 (defaults), N = {ce_n}, wall clock:")
    _print_rates(rates)


def section_rule_decisions(repeats: int) -> None:
    """(d) timescale slice decisions/s: batched compiled against the Python reference."""
    print("\n(d) timescale slice mode, leapfrog, eta 2e-3, 25 decisions per copy:")
    for size in (8, 64):
        rule = rule_decisions(size, 2e-3, 25, repeats)
        per_step = rule["steps_per_decision"]
        print(f"    N = {size} ({per_step:.0f} steps per decision):")
        for name, label in (
            ("compiled", "vector env, compiled (batched)"),
            ("python", "vector env, Python reference"),
            ("bare", "bare sim.steps(n)"),
        ):
            seconds = rule[name]
            print(f"      {label:32s} {1 / seconds:9.0f} decisions/s  "
                  f"{seconds / per_step * 1e6:6.3f} us/step")  # fmt: skip
        speedup, per_step_ratio = rule["python"] / rule["compiled"], rule["compiled"] / rule["bare"]
        print(f"      decisions/s compiled / Python reference: {speedup:.2f}x (target >= 10x); "
              f"per step compiled / bare: {per_step_ratio:.2f}x (<= 2x)")  # fmt: skip


def section_inexact(repeats: int, clock_name: str) -> None:
    """(e) raw adaptive slices with exact_slice_end=False against a bare integrate loop."""
    print(f"\n(e) raw slices, exact_slice_end=False, N = 64, 100 decisions, {clock_name} clock:")
    for integrator, setting in (("ias15", 1e-9), ("ias15", 1e-12), ("bs", 1e-8), ("bs", 1e-12)):
        env_s, bare_s = inexact_slices(integrator, setting, 64, 100, repeats)
        print(f"      {integrator:5s} {setting:7.0e}  vector env {env_s * 1e3:8.2f} ms, bare loop "
              f"{bare_s * 1e3:8.2f} ms, ratio {env_s / bare_s:5.2f}x (target <= 1.3x)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=200, help="vector steps per measurement")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    parser.add_argument("--sections", default="abcde", help="which of (a)-(e) to run")
    args = parser.parse_args()
    global clock
    clock = CLOCKS[args.clock]
    sections = {
        "a": lambda: section_fine(args.steps, args.repeats, args.clock),
        "b": lambda: section_interfaces(args.steps, args.repeats),
        "c": lambda: section_cross_entropy(args.repeats),
        "d": lambda: section_rule_decisions(args.repeats),
        "e": lambda: section_inexact(args.repeats, args.clock),
    }
    for name, section in sections.items():
        if name in args.sections:
            section()


if __name__ == "__main__":
    main()
