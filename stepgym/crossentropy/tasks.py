"""Classification tasks: a dataset split into train / validation, standardised on train.

Every entry of :data:`TASKS` is a function ``(request, rng) -> (X, y, image_side)`` that returns
the whole dataset (float features, integer labels 0..K-1); :func:`load_task` splits it
(seeded by ``rng``, stratified where every class has at least two samples) and standardises
the features with the training statistics.

Tasks:

- ``digits``: scikit-learn's 8x8 handwritten digits (1797 samples, 10 classes), images.
- ``breast_cancer``: scikit-learn's Wisconsin breast cancer set (569 samples, 30 features,
  2 classes).
- ``separable``: linearly separable binary data with a margin (``n_samples`` points in 2-D).
- ``worst_case``: Tyurin's worst case for LR+GD: n-1 points (-0.5, -1) labelled 0 (i.e. -1)
  and one point (0.5, -1) labelled 1 (+1). Train and validation are the same set (every
  point matters), and the features are NOT standardised (the geometry is the point).
- ``blobs``: Gaussian blobs (4 classes, 2-D) with a fraction ``label_noise`` of labels redrawn.
- ``custom``: the caller's own arrays ``X`` (n, d) and ``y`` (n,).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from stepgym.errors import ConfigError
from stepgym.registry import Registry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskRequest:
    """What a task builder may read."""

    n_samples: int | None = None
    """Dataset size for synthetic tasks (None: the task's default)."""
    label_noise: float = 0.1
    """Fraction of labels redrawn at random (``blobs``)."""
    X: np.ndarray | None = None
    """Features for ``custom``."""
    y: np.ndarray | None = None
    """Labels for ``custom``."""


RawTask = tuple[np.ndarray, np.ndarray, int | None]
TaskBuilder = Callable[[TaskRequest, np.random.Generator], RawTask]

TASKS: Registry[TaskBuilder] = Registry("task")

NO_SPLIT_TASKS = frozenset({"worst_case"})
"""Tasks evaluated on their training set (validation = train) and not standardised."""


@dataclass(frozen=True)
class TaskData:
    """A split, standardised dataset as tensors."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    n_classes: int
    image_side: int | None
    """Side of the square image the features come from (8 for digits), else None."""

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])


@functools.lru_cache(maxsize=4)
def _sklearn_set(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    loader = {"digits": datasets.load_digits, "breast_cancer": datasets.load_breast_cancer}[name]
    bunch = loader()
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)


@TASKS.register("digits")
def _digits(request: TaskRequest, rng: np.random.Generator) -> RawTask:
    x, y = _sklearn_set("digits")
    return x, y, 8


@TASKS.register("breast_cancer")
def _breast_cancer(request: TaskRequest, rng: np.random.Generator) -> RawTask:
    x, y = _sklearn_set("breast_cancer")
    return x, y, None


@TASKS.register("separable")
def _separable(request: TaskRequest, rng: np.random.Generator) -> RawTask:
    n = request.n_samples or 400
    normal = np.array([math.cos(0.6), math.sin(0.6)])
    x = rng.uniform(-2.0, 2.0, size=(n, 2))
    side = x @ normal
    margin = 0.2
    x += np.outer(np.where(side >= 0, margin, -margin), normal)  # push points off the boundary
    y = (x @ normal > 0).astype(np.int64)
    return x, y, None


@TASKS.register("worst_case")
def _worst_case(request: TaskRequest, rng: np.random.Generator) -> RawTask:
    n = request.n_samples or 1000
    x = np.tile(np.array([-0.5, -1.0]), (n, 1))
    x[-1] = (0.5, -1.0)
    y = np.zeros(n, dtype=np.int64)
    y[-1] = 1
    return x, y, None


@TASKS.register("blobs")
def _blobs(request: TaskRequest, rng: np.random.Generator) -> RawTask:
    n, classes = request.n_samples or 600, 4
    centres = rng.normal(0.0, 3.0, size=(classes, 2))
    y = rng.integers(0, classes, size=n)
    x = centres[y] + rng.normal(0.0, 1.0, size=(n, 2))
    flip = rng.random(n) < request.label_noise
    y = np.where(flip, rng.integers(0, classes, size=n), y)
    return x, y.astype(np.int64), None


@TASKS.register("custom")
def _custom(request: TaskRequest, rng: np.random.Generator) -> RawTask:
    if request.X is None or request.y is None:
        raise ConfigError("task='custom' needs both X (n, d) and y (n,) keyword arguments.")
    return request.X, request.y, None


def validate_arrays(
    x: object, y: object, val_fraction: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Check user arrays and relabel classes to 0..K-1; with ``val_fraction``, also check
    that the stratified train/validation split can be drawn (see :func:`check_split`)."""
    try:
        x_arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(
            "X must be a numeric array of shape (n, d); convert it with np.asarray(X, float)."
        ) from None
    y_arr = np.asarray(y)
    if x_arr.ndim != 2 or y_arr.ndim != 1 or len(x_arr) != len(y_arr):
        raise ConfigError(
            f"X must have shape (n, d) and y shape (n,), got X{x_arr.shape} and y{y_arr.shape}."
        )
    if x_arr.shape[1] == 0:
        raise ConfigError("X has zero feature columns; pass at least one feature per row.")
    if len(x_arr) < 4:
        raise ConfigError(f"X has {len(x_arr)} rows; a task needs at least 4 (more per class).")
    bad_rows = np.flatnonzero(~np.isfinite(x_arr).all(axis=1))
    if bad_rows.size:
        raise ConfigError(
            f"X has NaN or infinite values in {bad_rows.size} row(s), first row "
            f"{int(bad_rows[0])}; drop or impute them before training."
        )
    labels = _class_indices(y_arr)
    if val_fraction is not None:
        check_split(np.bincount(labels), val_fraction)
    return x_arr, labels


def _class_indices(y: np.ndarray) -> np.ndarray:
    """``y``'s classes as 0..K-1; missing or non-finite labels are refused, not made a class."""
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        bad = np.flatnonzero(~np.isfinite(y))
        raise ConfigError(
            f"y has {bad.size} NaN or infinite label(s), first at row {int(bad[0])}; drop those "
            f"rows (a missing label is not a class)."
        )
    if y.dtype.kind == "O" and any(label is None for label in y):
        raise ConfigError("y has None labels; drop those rows (a missing label is not a class).")
    try:
        classes, labels = np.unique(y, return_inverse=True)
    except TypeError:
        raise ConfigError(
            "y mixes label types that cannot be compared; use one type (ints or strings)."
        ) from None
    if len(classes) < 2:
        raise ConfigError(f"y needs at least two classes, got {classes.tolist()}.")
    return labels.reshape(-1).astype(np.int64)


def check_split(counts: np.ndarray, val_fraction: float) -> None:
    """Refuse a dataset whose stratified split cannot give every class a training and a
    validation row: ``counts[k]`` rows of class k, ``ceil(val_fraction * n)`` held out."""
    n, n_classes = int(counts.sum()), int((counts > 0).sum())
    n_val = math.ceil(val_fraction * n)
    n_train = n - n_val
    rare = np.flatnonzero((counts > 0) & (counts < 2))
    if rare.size:
        raise ConfigError(
            f"class {int(rare[0])} has a single row; every class needs at least 2 (one for "
            f"training, one for validation): add rows or drop the class."
        )
    if n_val < n_classes or n_train < n_classes:
        low = n_classes / n
        raise ConfigError(
            f"val_fraction={val_fraction} splits {n} rows into {n_train} training and {n_val} "
            f"validation rows, but each side needs one per class ({n_classes}); choose "
            f"val_fraction in [{low:.3g}, {1 - low:.3g}] or add rows."
        )


def load_task(
    name: str, request: TaskRequest, rng: np.random.Generator, val_fraction: float
) -> TaskData:
    """Build task ``name`` and split it (seeded by ``rng``)."""
    builder = TASKS.get(name)
    x, y, side = builder(request, rng)
    x, y = validate_arrays(x, y)
    n_classes = int(y.max()) + 1
    if name in NO_SPLIT_TASKS:
        x_train, y_train, x_val, y_val = x, y, x, y
    else:
        check_split(np.bincount(y), val_fraction)
        x_train, y_train, x_val, y_val = _split(x, y, rng, val_fraction)
        mean, std = x_train.mean(axis=0), x_train.std(axis=0)
        std = np.where(std > 1e-12, std, 1.0)
        x_train, x_val = (x_train - mean) / std, (x_val - mean) / std
    logger.debug("task %s: %d train, %d val, %d classes", name, len(y_train), len(y_val), n_classes)
    return TaskData(
        name,
        torch.as_tensor(x_train, dtype=torch.float32),
        torch.as_tensor(y_train),
        torch.as_tensor(x_val, dtype=torch.float32),
        torch.as_tensor(y_val),
        n_classes,
        side,
    )


def _split(
    x: np.ndarray, y: np.ndarray, rng: np.random.Generator, val_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    seed = int(rng.integers(0, 2**31 - 1))
    x_tr, x_va, y_tr, y_va = train_test_split(
        x, y, test_size=val_fraction, random_state=seed, stratify=stratify
    )
    return x_tr, y_tr, x_va, y_va
