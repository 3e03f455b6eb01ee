"""Per-copy info dicts in Gymnasium's vector format (what ``VectorEnv._add_info`` builds)."""

from __future__ import annotations

from typing import Any

import numpy as np

InfoList = list[dict[str, Any]]
"""One info dict per copy."""


def batch_infos(infos: InfoList, num_envs: int) -> dict[str, Any]:
    """Per-copy info dicts in Gymnasium's vector format (as ``VectorEnv._add_info`` builds it):
    ``{key: array over copies, "_key": mask of the copies that have it}``; nested dicts are
    batched the same way. Arrays take the type of the first copy's value."""
    keys = tuple(infos[0]) if infos else ()
    if len(infos) == num_envs and all(tuple(info) == keys for info in infos):
        # the usual case: every copy reported the same keys; batch column by column
        out: dict[str, Any] = {}
        columns = zip(*(info.values() for info in infos), strict=True)
        for key, column in zip(keys, columns, strict=True):
            out[key] = _column(list(column), num_envs)
            out[f"_{key}"] = np.ones(num_envs, dtype=np.bool_)
        return out
    out = {}
    for key in dict.fromkeys(key for info in infos for key in info):
        mask = np.fromiter((key in info for info in infos), dtype=np.bool_, count=num_envs)
        first = next(info[key] for info in infos if key in info)
        if isinstance(first, dict):
            out[key] = batch_infos([info.get(key, {}) for info in infos], num_envs)
        else:
            array = _column([first], 1)  # the type the batch takes
            full = np.zeros((num_envs, *array.shape[1:]), dtype=array.dtype)
            if full.dtype == object:
                full[:] = None
            for i, info in enumerate(infos):
                if key in info:
                    full[i] = info[key]
            out[key] = full
        out[f"_{key}"] = mask
    return out


def _column(values: list[Any], num_envs: int) -> Any:
    """One info key's values over all copies as Gymnasium batches them."""
    first = values[0]
    if isinstance(first, dict):
        return batch_infos(values, num_envs)
    if type(first) in (int, float, bool) or isinstance(first, np.number):
        return np.array(values, dtype=type(first))
    if isinstance(first, np.ndarray):
        return np.stack(values).astype(first.dtype, copy=False)
    return np.fromiter(values, dtype=object, count=len(values))


__all__ = ["InfoList", "batch_infos"]
