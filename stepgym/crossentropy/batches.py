"""The data side of a training episode: seeded mini-batches, the radius's sample set and the
validation sets."""

from __future__ import annotations

import torch

from stepgym.crossentropy.config import CrossEntropyConfig
from stepgym.crossentropy.tasks import TaskData


class Batches:
    """Mini-batches through seeded epoch permutations, plus the fixed sets drawn at reset.

    Draws from ``generator`` in a fixed order: the probe set, then the validation subset
    (when ``val_size`` asks for one), then one permutation per epoch as the batches need it.
    """

    def __init__(
        self, config: CrossEntropyConfig, data: TaskData, generator: torch.Generator
    ) -> None:
        self.config, self.data, self.generator = config, data, generator
        n_train = len(data.y_train)
        self.batch_size = min(config.batch_size or n_train, n_train)
        self._epoch: tuple[torch.Tensor, torch.Tensor] | None = None
        self._cursor = 0
        probe = torch.randperm(n_train, generator=generator)[: config.probe_size]
        self.probe = torch.sort(probe).values
        """Indices of the fixed probe subset of the training set (``sample_set="probe"``)."""
        n_val = len(data.y_val)
        self.val_subset: tuple[torch.Tensor, torch.Tensor] | None = None
        """The in-between validation set of ``val_size`` samples (None: the whole split)."""
        if config.val_size is not None and config.val_size < n_val:
            pick = torch.sort(torch.randperm(n_val, generator=generator)[: config.val_size])
            self.val_subset = (data.x_val[pick.values], data.y_val[pick.values])

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next mini-batch (the whole training set when the batch covers it)."""
        n = len(self.data.y_train)
        if self.batch_size >= n:
            return self.data.x_train, self.data.y_train
        if self._epoch is None or self._cursor + self.batch_size > n:
            # one gather per epoch; the batches are then slices (views) of the shuffled copy
            order = torch.randperm(n, generator=self.generator)
            self._epoch = (self.data.x_train[order], self.data.y_train[order])
            self._cursor = 0
        start, self._cursor = self._cursor, self._cursor + self.batch_size
        x, y = self._epoch
        return x[start : self._cursor], y[start : self._cursor]

    def sample_set(self, x_batch: torch.Tensor) -> torch.Tensor:
        """The inputs rho_a's max runs over (``sample_set``: batch, probe or train)."""
        if self.config.sample_set == "batch":
            return x_batch
        if self.config.sample_set == "probe":
            return self.data.x_train[self.probe]
        return self.data.x_train

    def validation(self, *, full: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole held-out split, or (``full=False``) the ``val_size`` subset if any."""
        if not full and self.val_subset is not None:
            return self.val_subset
        return self.data.x_val, self.data.y_val
