"""The ``stepgym`` command: ``train``, ``evaluate``, ``transfer``, ``quickstart``, ``sweep``
and ``reproduce``.

Every option is a field of a frozen config dataclass in :mod:`stepgym.agents.config`, turned
into a command line by tyro (``stepgym SUBCOMMAND --help`` lists them with their docs).
Mistakes (an unknown env id, a bad option, a missing or corrupted model file) end with a
one-line ``error: ...`` on stderr and exit status 2, not a traceback.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from stepgym.errors import StepGymError

USAGE_ERROR = 2
DESCRIPTION = "stepgym: train and evaluate step-size controllers (RL policies and classical rules)."


def _configs() -> dict[str, Callable[..., Any]]:
    from stepgym.agents.config import (
        EvaluateConfig,
        QuickstartConfig,
        ReproduceConfig,
        SweepConfig,
        TrainConfig,
        TransferConfig,
    )

    return {
        "train": TrainConfig,
        "evaluate": EvaluateConfig,
        "transfer": TransferConfig,
        "quickstart": QuickstartConfig,
        "sweep": SweepConfig,
        "reproduce": ReproduceConfig,
    }


class CommandLineError(StepGymError):
    """The command line could not be parsed."""


def parse(args: Sequence[str]) -> Any:
    """Parse ``args`` into one of the subcommand configs; tyro's boxed errors become one line."""
    import tyro

    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            return tyro.extras.subcommand_cli_from_dict(
                _configs(), args=list(args), prog="stepgym", description=DESCRIPTION
            )
    except SystemExit as exit_:
        if not exit_.code:
            raise
        raise CommandLineError(_one_line(captured.getvalue(), args)) from None


def _one_line(text: str, args: Sequence[str]) -> str:
    """The first message line of a tyro error box, plus where to find help."""
    lines = [line.strip(" │╭╮╰╯─|+-=_\t") for line in text.splitlines()]
    lines = [line for line in lines if line]
    # tyro draws a box: the title sits in the top border, the message on the next line
    message = lines[1] if len(lines) > 1 else (lines[0] if lines else "")
    message = message or "could not parse the command line"
    sub = next((a for a in args if a in _configs()), None)
    hint = f"stepgym {sub} --help" if sub else "stepgym --help"
    return f"{message} (see '{hint}')"


def run_train(config: Any) -> None:
    from stepgym.agents.train import train

    start = time.perf_counter()
    run_dir = train(config)
    print(f"trained in {time.perf_counter() - start:.0f} s; run directory: {run_dir}")
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        print(f"  {path}")
    print(f"evaluate it with: stepgym evaluate --policy {run_dir}")


def run_evaluate(config: Any) -> None:
    from stepgym.agents.evaluate import evaluate, list_baselines

    if config.list_baselines:
        for name, domain, parameter, doc in list_baselines():
            print(f"{name:10s} {domain:14s} parameter: {parameter:8s} {doc}")
        return
    report = evaluate(config)
    print(report.markdown)
    _print_files(report.files)


def run_transfer(config: Any) -> None:
    from stepgym.agents.transfer import transfer

    report = transfer(config)
    print(report.markdown)
    _print_files(report.files)


def run_quickstart(config: Any) -> None:
    from stepgym.agents.quickstart import quickstart

    result = quickstart(config)
    print(result.report.markdown)
    print(f"trained in {result.train_seconds:.0f} s, evaluated in {result.evaluate_seconds:.0f} s")
    print(f"run directory (model, VecNormalize stats, TensorBoard logs): {result.run_dir}")
    _print_files(result.report.files)
    print(f"TensorBoard: tensorboard --logdir {result.run_dir / 'tb'}")


def run_sweep(config: Any) -> None:
    from stepgym.agents.sweep import sweep

    start = time.perf_counter()
    result = sweep(config)
    print(
        f"sweep {result.sweep_dir}: {len(result.trials)} trials, ran {len(result.ran)} "
        f"(the others had finished before) in {time.perf_counter() - start:.0f} s"
    )
    if result.report is not None:
        print(result.report.markdown)
        _print_files(result.report.files)
    if result.errors:
        raise SweepFailedError(
            f"{len(result.errors)} trial(s) failed (run the same command again to retry "
            "them; finished trials are kept):\n  " + "\n  ".join(result.errors)
        )


def run_reproduce(config: Any) -> None:
    from stepgym.reproduce import list_targets, reproduce

    if config.list or config.name is None:
        for name, doc in list_targets():
            print(f"{name:24s} {doc}")
        return
    result = reproduce(config)
    print(result.text)
    _print_files(result.files)


class SweepFailedError(StepGymError):
    """Some trials of a sweep raised."""


def _print_files(files: dict[str, Any]) -> None:
    print("files written:")
    for name, path in files.items():
        print(f"  {name}: {path}")


HANDLERS: dict[str, Callable[[Any], None]] = {
    "TrainConfig": run_train,
    "EvaluateConfig": run_evaluate,
    "TransferConfig": run_transfer,
    "QuickstartConfig": run_quickstart,
    "SweepConfig": run_sweep,
    "ReproduceConfig": run_reproduce,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``stepgym`` command; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("stepgym").setLevel(logging.INFO)
    try:
        config = parse(args)
        HANDLERS[type(config).__name__](config)
    except StepGymError as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except (FileNotFoundError, PermissionError, IsADirectoryError) as error:
        print(
            f"error: {error.strerror or error}: {error.filename}; check the path.", file=sys.stderr
        )
        return USAGE_ERROR
    except KeyboardInterrupt as interrupt:
        print(f"error: interrupted{f': {interrupt}' if str(interrupt) else '.'}", file=sys.stderr)
        return 130
    return 0
