"""The frozen configuration of a cross-entropy training episode, checked on construction."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from stepgym.config_checks import check_field_types, check_keywords
from stepgym.crossentropy.features import CE_FEATURES, DEFAULT_FEATURES
from stepgym.crossentropy.models import MODELS
from stepgym.crossentropy.rewards import REWARD_PRESETS, REWARD_TERMS
from stepgym.crossentropy.tasks import TASKS, validate_arrays
from stepgym.errors import ConfigError, check_positive_int, check_range
from stepgym.integrators.optimizers import OPTIMIZERS
from stepgym.radius import RADIUS_METHODS, SAMPLE_SETS

ACTION_MODES = ("continuous", "discrete", "radius")
SPIKE_MODES = ("persistent", "single")
UPDATE_CAPS = ("none", "rho_a")
SPLITS = ("train", "test")


class Problem(NamedTuple):
    """One (task, model, optimizer) of a problem distribution."""

    task: str
    model: str
    optimizer: str


@dataclass(frozen=True)
class CrossEntropyConfig:
    """Every setting of :class:`stepgym.envs.cross_entropy.CrossEntropyEnv`."""

    task: str = "digits"
    """A :data:`stepgym.crossentropy.tasks.TASKS` name; arrays ``X``, ``y`` imply ``custom``."""
    model: str = "mlp"
    """A :data:`stepgym.crossentropy.models.MODELS` name."""
    optimizer: str = "adam"
    """A :data:`stepgym.integrators.optimizers.OPTIMIZERS` name."""
    action: str = "continuous"
    """'continuous' / 'discrete': the agent picks the learning rate on a log scale in
    ``[lr * lr_range[0], lr * lr_range[1]]`` (action 0 / the middle index = ``lr``);
    'radius': the agent picks r in ``r_range`` and the update is rescaled to tau = r rho_a."""
    lr: float | None = None
    """Base learning rate (None: the optimizer's default). In radius mode the raw update is
    computed at this rate and then rescaled."""
    lr_range: tuple[float, float] = (1e-2, 1e2)
    """Multipliers of ``lr`` at the two ends of the learning-rate action."""
    r_range: tuple[float, float] = (0.01, 10.0)
    """Range of the normalised step r in radius mode (log-uniform)."""
    n_actions: int = 9
    """Grid size in discrete mode (discrete radius mode included)."""
    radius_action_kind: str = "continuous"
    """Encoding of the radius action: 'continuous' or 'discrete'."""
    max_steps: int = 200
    """Optimizer steps per episode; the episode is truncated with reason 'step_budget'."""
    batch_size: int | None = 64
    """Mini-batch size (None: full batch). Batches run through seeded epoch permutations."""
    val_fraction: float = 0.2
    """Share of the data held out for validation (stratified)."""
    val_every: int = 10
    """Validation cadence: the validation pass runs after every ``val_every``-th step and
    always after the last step (``max_steps``), so the final score is exact; 1 measures after
    every step. In between, ``info``'s ``val_loss`` / ``val_accuracy``, the ``val_accuracy``
    feature and the reward terms read the most recent measurement (``info["val_step"]`` says
    after which step it was taken), so the validation reward terms change only at a
    measurement and ``val_accuracy_gain`` still telescopes to final - initial accuracy."""
    val_size: int | None = None
    """Validation samples of the in-between measurements: None uses the whole held-out split;
    an int a fixed random subset of it drawn at reset. The measurements at reset and after the
    last step always use the whole split."""
    n_samples: int | None = None
    """Dataset size of synthetic tasks (separable, worst_case, blobs)."""
    label_noise: float = 0.1
    """Fraction of redrawn labels in 'blobs'."""
    sample_set: str = "batch"
    """Which samples rho_a's max runs over: 'batch', 'probe' (fixed random subset of the
    training set of size ``probe_size``, drawn at reset) or 'train' (all training samples)."""
    probe_size: int = 256
    """Size of the probe set."""
    radius_method: str = "jvp"
    """'jvp' (exact, one forward-mode JVP) or 'fd' (finite differences with step
    ``FD_EPS * previous rho_a``, see ``stepgym.crossentropy.trainer``: on the batch, forward
    differences reusing the training logits, one extra no-grad forward; on probe/train,
    central differences, two). 'fd' agrees with 'jvp' to ~0.1% per step and is the cheaper
    choice on small models."""
    temperature: float = 1.0
    """Logit temperature T: the loss sees z / T, and rho_a = pi T / Delta_a."""
    spike_factor: float = 1.0
    """Learning-rate spike factor k (1: no spike). In lr modes the learning rate is multiplied
    by k; in radius mode the raw optimizer update is multiplied by k BEFORE the rescale to
    tau = r rho_a (which therefore absorbs it)."""
    spike_step: int = 0
    """First (0-based) step the spike applies to."""
    spike_mode: str = "persistent"
    """'persistent' (every step from ``spike_step`` on) or 'single' (that step only)."""
    grad_clip: float | None = None
    """Clip the gradient norm to this value before the optimizer step (None: no clipping)."""
    update_cap: str = "none"
    """'none' or 'rho_a': scale the actual update by min(1, rho_a / tau) (Prop 5.2)."""
    divergence_loss: float = 100.0
    """A training or validation loss above this (or any non-finite loss/weight) is divergence."""
    features: str | tuple[str, ...] = DEFAULT_FEATURES
    """Observation features, names in :data:`stepgym.crossentropy.features.CE_FEATURES` (one
    name alone is accepted; stored as a tuple)."""
    reward: str | Mapping[str, float] = "accuracy"
    """A preset name in REWARD_PRESETS or ``{term: weight}`` over REWARD_TERMS."""
    sharpness_iters: int = 5
    """Hessian-vector power iterations for the optional ``log_sharpness`` feature."""
    hidden: int = 128
    """Hidden width of the models."""
    tasks: tuple[str, ...] = ()
    """Problem distribution: with ``tasks``, ``models`` or ``optimizers`` non-empty, every
    reset draws the episode's (task, model, optimizer) uniformly from the product of the three
    lists (an empty list stands for the single ``task`` / ``model`` / ``optimizer``), seeded by
    the reset's ``np_random``. Empty everywhere (the default): one fixed problem, as before."""
    models: tuple[str, ...] = ()
    """Models of the problem distribution (see ``tasks``)."""
    optimizers: tuple[str, ...] = ()
    """Optimizers of the problem distribution (see ``tasks``)."""
    held_out: tuple[tuple[str, str], ...] = ()
    """(task, model) pairs of the distribution held out of training: ``split="train"`` never
    draws them, ``split="test"`` draws only them (with every optimizer)."""
    split: str = "train"
    """'train' (the distribution minus ``held_out``) or 'test' (the ``held_out`` pairs)."""
    X: np.ndarray | None = field(default=None, compare=False, repr=False)
    """Features of a custom task (n, d)."""
    y: np.ndarray | None = field(default=None, compare=False, repr=False)
    """Labels of a custom task (n,)."""

    def __post_init__(self) -> None:
        check_field_types(self)  # first: every later check may assume the annotated types
        self._check_choices()
        self._check_numbers()
        names = (self.features,) if isinstance(self.features, str) else self.features
        for feature in names:
            CE_FEATURES.get(feature)
        self._check_reward()
        self._check_task()
        self._check_problems()
        object.__setattr__(self, "features", tuple(names))
        object.__setattr__(self, "lr_range", tuple(float(v) for v in self.lr_range))
        object.__setattr__(self, "r_range", tuple(float(v) for v in self.r_range))

    def _check_choices(self) -> None:
        """Every named choice is one the registries or the mode lists know."""
        for name, registry in (("task", TASKS), ("model", MODELS), ("optimizer", OPTIMIZERS)):
            registry.get(getattr(self, name))  # raises with "did you mean"
        for name, choices in (
            ("action", ACTION_MODES),
            ("spike_mode", SPIKE_MODES),
            ("update_cap", UPDATE_CAPS),
            ("sample_set", SAMPLE_SETS),
            ("radius_method", RADIUS_METHODS),
            ("radius_action_kind", ("continuous", "discrete")),
        ):
            if getattr(self, name) not in choices:
                raise ConfigError(
                    f"{name}={getattr(self, name)!r} is not valid; "
                    f"choose one of {', '.join(choices)}."
                )

    def _check_numbers(self) -> None:
        """Every count is a positive integer, every rate and range within its bounds."""
        if self.lr is not None:
            check_range("lr", self.lr, 0.0, math.inf, inclusive=False)
        for name in ("lr_range", "r_range"):
            low, high = _pair(name, getattr(self, name))
            if not 0 < low < high < math.inf:
                raise ConfigError(f"{name} needs 0 < low < high, got {getattr(self, name)!r}.")
        check_positive_int("max_steps", self.max_steps)
        check_positive_int("n_actions", self.n_actions)
        check_positive_int("probe_size", self.probe_size)
        check_positive_int("sharpness_iters", self.sharpness_iters)
        check_positive_int("hidden", self.hidden)
        check_positive_int("val_every", self.val_every)
        if self.val_size is not None:
            check_positive_int("val_size", self.val_size)
        if self.batch_size is not None:
            check_positive_int("batch_size", self.batch_size)
        if self.n_samples is not None:
            check_positive_int("n_samples", self.n_samples)
        if (
            isinstance(self.spike_step, bool)
            or not isinstance(self.spike_step, int)
            or self.spike_step < 0
        ):
            raise ConfigError(f"spike_step must be an integer >= 0, got {self.spike_step!r}.")
        check_range("val_fraction", self.val_fraction, 0.0, 1.0, inclusive=False)
        check_range("label_noise", self.label_noise, 0.0, 1.0)
        check_range("temperature", self.temperature, 0.0, math.inf, inclusive=False)
        check_range("spike_factor", self.spike_factor, 0.0, math.inf, inclusive=False)
        check_range("divergence_loss", self.divergence_loss, 0.0, math.inf, inclusive=False)
        if self.grad_clip is not None:
            check_range("grad_clip", self.grad_clip, 0.0, math.inf, inclusive=False)

    def _check_reward(self) -> None:
        if isinstance(self.reward, str):
            REWARD_PRESETS.get(self.reward)
        elif isinstance(self.reward, Mapping):
            for term in self.reward:
                REWARD_TERMS.get(term)
        else:
            raise ConfigError(
                f"reward must be a preset name or a dict of weights, got {self.reward!r}."
            )

    def _check_task(self) -> None:
        """A custom task comes with both arrays, and arrays only with a custom task."""
        if (self.X is None) != (self.y is None):
            raise ConfigError("pass both X and y for a custom task, or neither.")
        if self.X is not None:
            if self.task not in ("custom", "digits"):
                raise ConfigError(
                    f"X and y given together with task={self.task!r}; use task='custom'."
                )
            validate_arrays(self.X, self.y, self.val_fraction)
            object.__setattr__(self, "task", "custom")
        elif self.task == "custom":
            raise ConfigError("task='custom' needs X (n, d) and y (n,) keyword arguments.")

    @property
    def multi_problem(self) -> bool:
        """Whether each reset draws its problem from a distribution (``tasks``, ...)."""
        return bool(self.tasks or self.models or self.optimizers)

    def problems(self, split: str | None = None) -> tuple[Problem, ...]:
        """The problems of ``split`` (default: this config's), in a fixed order; a
        single-problem config has just its own."""
        split = self.split if split is None else split
        tasks, models = self.tasks or (self.task,), self.models or (self.model,)
        held = set(self.held_out)
        return tuple(
            Problem(task, model, optimizer)
            for task in tasks
            for model in models
            if ((task, model) in held) == (split == "test")
            for optimizer in self.optimizers or (self.optimizer,)
        )

    def for_problem(self, problem: Problem) -> CrossEntropyConfig:
        """The single-problem config of one episode: this one with ``problem`` fixed."""
        return dataclasses.replace(
            self, task=problem.task, model=problem.model, optimizer=problem.optimizer,
            tasks=(), models=(), optimizers=(), held_out=(), split="train",
        )  # fmt: skip

    def _check_problems(self) -> None:
        """The distribution's names are known, its held-out pairs belong to it, the split is
        not empty and one action range fits every optimizer."""
        for name in ("tasks", "models", "optimizers"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "held_out", tuple(tuple(p) for p in self.held_out))
        if self.split not in SPLITS:
            raise ConfigError(f"split={self.split!r} is not valid; choose one of train, test.")
        if not self.multi_problem:
            if self.held_out or self.split != "train":
                raise ConfigError(
                    "held_out and split select problems of a distribution; give the lists to "
                    "draw from as tasks=[...], models=[...] and/or optimizers=[...]."
                )
            return
        for registry, names in ((TASKS, self.tasks), (MODELS, self.models)):
            for name in names:
                registry.get(name)
        for name in self.optimizers:
            OPTIMIZERS.get(name)
        if self.X is not None or "custom" in self.tasks:
            raise ConfigError(
                "a problem distribution draws built-in tasks; X, y and task 'custom' belong to "
                "one fixed problem: drop them, or drop tasks/models/optimizers."
            )
        self._check_held_out()
        if self.action != "radius" and self.lr is None:
            defaults = {OPTIMIZERS.get(p.optimizer).default_lr for p in self.problems("train")}
            if len(defaults) > 1:
                raise ConfigError(
                    f"the optimizers {', '.join(self.optimizers)} have different default rates "
                    f"{sorted(defaults)}, so one lr action range cannot fit them all; pass "
                    f"lr=<base rate> or use action='radius' (r transfers across optimizers)."
                )

    def _check_held_out(self) -> None:
        tasks, models = self.tasks or (self.task,), self.models or (self.model,)
        for pair in self.held_out:
            if len(pair) != 2 or pair[0] not in tasks or pair[1] not in models:
                raise ConfigError(
                    f"held_out pair {pair!r} is not a (task, model) pair of the distribution "
                    f"(tasks {list(tasks)}, models {list(models)}); add its task to tasks and "
                    f"its model to models, or drop the pair."
                )
        if not self.problems():
            fix = (
                "hold out fewer pairs"
                if self.split == "train"
                else "name the pairs to test in held_out=[[task, model], ...]"
            )
            raise ConfigError(f"split={self.split!r} leaves no problem to draw; {fix}.")

    @property
    def base_lr(self) -> float:
        """``lr`` or the optimizer's default."""
        return self.lr if self.lr is not None else OPTIMIZERS.get(self.optimizer).default_lr

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> CrossEntropyConfig:
        """Build from keyword arguments, naming the valid ones on a typo."""
        check_keywords(cls, kwargs, "CrossEntropy-v0")
        return cls(**kwargs)


def _pair(name: str, value: object) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a pair (low, high), got {value!r}.") from None
    return low, high
