"""Acceptance experiment: a x10,000 learning-rate spike, with and without the radius.

A thin caller of the ``softmax-spike`` reproduction target (the logic lives in
:mod:`stepgym.reproduce.softmax_spike`; ``stepgym reproduce softmax-spike`` also writes
``results/softmax-spike.md``). This script prints the table only.

Run: ``python benchmarks/spike_experiment.py [--seeds 5] [--models mlp_layernorm ...]``.
"""

from __future__ import annotations

import argparse
import time

from stepgym.reproduce.softmax_spike import MODELS, run_experiment, table


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    start = time.perf_counter()
    results = run_experiment(args.models, seeds)
    print(
        "digits, Adam lr 1e-3, batch 64, 200 steps, lr x10,000 from step 50; "
        f"seeds {seeds}; validation split 20% (stratified); torch threads 1"
    )
    print(table(results))
    print(f"({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
