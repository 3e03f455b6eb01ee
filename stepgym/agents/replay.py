"""The replay buffer of an off-policy model (DQN), saved beside each checkpoint as plain arrays.

SB3's own ``save_replay_buffer`` pickles the buffer, and loading a pickle can run code; here the
filled part of the buffer is written as ``.npz`` (``<model stem>_replay.npz`` beside the model)
and read back with ``allow_pickle=False``. A resumed DQN run then continues from the same
transitions instead of an empty buffer (which would stall learning until ``learning_starts``
new transitions and forget everything seen before the interruption).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from stepgym.agents.runfiles import atomic_write
from stepgym.errors import ConfigError

logger = logging.getLogger(__name__)

REPLAY_FIELDS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
"""Array fields of SB3's ReplayBuffer that are saved (``next_observations`` is absent when the
buffer optimises memory)."""


def replay_path_for(model_path: Path) -> Path:
    """``<dir>/<stem>_replay.npz`` beside the model file."""
    model_path = Path(model_path)
    return model_path.with_name(f"{model_path.stem}_replay.npz")


def _buffer(model: object) -> Any:
    buffer = getattr(model, "replay_buffer", None)
    if buffer is None or isinstance(getattr(buffer, "observations", None), dict):
        return None  # on-policy, or a dict-observation buffer (not used by stepgym's envs)
    return buffer


def save_replay(model: object, model_path: Path) -> Path | None:
    """Write the filled part of ``model``'s replay buffer beside ``model_path``; None if the
    model has no (array) replay buffer."""
    buffer = _buffer(model)
    if buffer is None:
        return None
    filled = buffer.buffer_size if buffer.full else buffer.pos
    arrays = {
        name: getattr(buffer, name)[:filled]
        for name in REPLAY_FIELDS
        if getattr(buffer, name, None) is not None
    }
    arrays["pos"] = np.int64(buffer.pos)
    arrays["full"] = np.bool_(buffer.full)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    return atomic_write(replay_path_for(model_path), write, suffix=".npz")


def restore_replay(model: object, model_path: Path) -> bool:
    """Fill ``model``'s replay buffer from the file saved with ``model_path``; False if there is
    no buffer or no file. A file that does not fit the buffer is refused with the fix."""
    buffer = _buffer(model)
    path = replay_path_for(model_path)
    if buffer is None or not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"could not read the replay buffer {path} ({error}); delete it to resume with an "
            f"empty buffer."
        ) from None
    missing = {"pos", "full", "observations"} - arrays.keys()
    if missing:
        raise ConfigError(
            f"{path} is not a replay buffer saved by stepgym (no {sorted(missing)}); delete it "
            f"to resume with an empty buffer."
        )
    for name in REPLAY_FIELDS:
        target = getattr(buffer, name, None)
        if target is None:
            continue
        saved = arrays.get(name)
        rows = target.shape[0]
        size_ok = saved is not None and (
            saved.shape[0] == rows if arrays["full"] else saved.shape[0] <= rows
        )
        if saved is None or not size_ok or saved.shape[1:] != target.shape[1:]:
            raise ConfigError(
                f"the replay buffer {path} does not fit this run's buffer ({name}: saved "
                f"{None if saved is None else saved.shape}, buffer {target.shape}); resume with "
                f"the run's own buffer_size and n_envs, or delete the file to start it empty."
            )
        target[: saved.shape[0]] = saved
    buffer.pos = int(arrays["pos"])
    buffer.full = bool(arrays["full"])
    logger.info("replay buffer restored from %s (%d transitions)", path, buffer.size())
    return True


__all__ = ["replay_path_for", "restore_replay", "save_replay"]
