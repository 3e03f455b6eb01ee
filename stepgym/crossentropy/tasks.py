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


def validate_arrays(x: object, y: object) -> tuple[np.ndarray, np.ndarray]:
    """Check user arrays and relabel classes to 0..K-1."""
    x_arr = np.asarray(x, dtype=np.float64)
    y_arr = np.asarray(y)
    if x_arr.ndim != 2 or y_arr.ndim != 1 or len(x_arr) != len(y_arr):
        raise ConfigError(
            f"X must have shape (n, d) and y shape (n,), got X{x_arr.shape} and y{y_arr.shape}."
        )
    if len(x_arr) < 4 or not np.isfinite(x_arr).all():
        raise ConfigError("X needs at least 4 rows and only finite values.")
    classes, labels = np.unique(y_arr, return_inverse=True)
    if len(classes) < 2:
        raise ConfigError(f"y needs at least two classes, got {classes.tolist()}.")
    return x_arr, labels.astype(np.int64)


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
