"""A 4-trial sweep on 2 local Ray workers against the same 4 trials run one after another.

Each trial is a small PPO run on ThreeBody-v0 (leapfrog, dimensionless step) plus its held-out
evaluation with the timescale rule matched to the policy's cost. Repeats alternate the two
ways (fresh output directories each time) and the medians are compared. Ray is started once,
before the repeats; its start-up time is printed apart.

Run: ``python benchmarks/bench_sweep.py [--repeats 2] [--timesteps 32768]`` (smaller trials
measure Ray's per-trial worker start-up, about 8 s each here, more than the work).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from stepgym.agents.config import SweepConfig, TrainConfig
from stepgym.agents.sweep import connect, import_ray, run_trial, sweep, validate

ENV = {"integrator": "leapfrog", "step_mode": "timescale", "reward": "linear_cost", "horizon": 3.0}


def config(timesteps: int, out_dir: Path) -> SweepConfig:
    train = TrainConfig(
        env_kwargs=json.dumps(ENV),
        total_timesteps=timesteps,
        n_envs=2,
        n_steps=128,
        batch_size=128,
        n_epochs=2,
        eval_freq=0,
        checkpoint_freq=0,
        progress_bar=False,
    )
    return SweepConfig(
        train=train,
        grid=("seed=0,1,2,3",),
        n_episodes=4,
        bisect_iters=2,
        out_dir=out_dir,
        num_cpus=2,
        cpus_per_trial=1.0,
        n_bootstrap=200,
    )


def on_ray(timesteps: int, base: Path, repeat: int) -> float:
    start = time.perf_counter()
    result = sweep(config(timesteps, base / f"ray{repeat}"))
    seconds = time.perf_counter() - start
    if result.errors or len(result.ran) != 4:
        raise RuntimeError(f"sweep did not run its 4 trials: {result.errors}")
    return seconds


def one_after_another(timesteps: int, base: Path, repeat: int) -> float:
    sweep_config = config(timesteps, base / f"seq{repeat}")
    trials = validate(sweep_config)
    start = time.perf_counter()
    for trial in trials:
        run_trial(trial, (base / f"seq{repeat}").resolve())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--timesteps", type=int, default=32768)
    args = parser.parse_args()
    start = time.perf_counter()
    connect(config(args.timesteps, Path(".")))
    ray_start = time.perf_counter() - start
    parallel, serial = [], []
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as name:
        base = Path(name)
        for repeat in range(args.repeats):
            parallel.append(on_ray(args.timesteps, base, repeat))
            serial.append(one_after_another(args.timesteps, base, repeat))
            print(
                f"repeat {repeat}: sweep on 2 workers {parallel[-1]:.1f} s, "
                f"one after another {serial[-1]:.1f} s",
                flush=True,
            )
    import_ray().shutdown()
    sweep_median, serial_median = statistics.median(parallel), statistics.median(serial)
    print(
        f"4 trials ({args.timesteps} PPO steps + held-out evaluation each), "
        f"{args.repeats} interleaved repeats; Ray start-up {ray_start:.1f} s (once, apart)"
    )
    print(
        f"median: sweep on 2 local workers {sweep_median:.1f} s, "
        f"one after another {serial_median:.1f} s"
    )
    print(f"speed-up (one after another / sweep): {serial_median / sweep_median:.2f}x")


if __name__ == "__main__":
    main()
