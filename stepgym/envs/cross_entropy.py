"""``stepgym/CrossEntropy-v0``: choose the step size of a classifier's optimizer."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from stepgym.actions import LogActionMap
from stepgym.crossentropy.config import CrossEntropyConfig, Problem
from stepgym.crossentropy.evaluation import CROSS_ENTROPY_DOMAIN, END_REASONS
from stepgym.crossentropy.features import CE_FEATURES, CEState
from stepgym.crossentropy.render import render_curves, trace_point
from stepgym.crossentropy.rewards import REWARD_PRESETS, REWARD_TERMS, CETransition
from stepgym.crossentropy.trainer import Trainer, TrainingRun
from stepgym.envs.base import RENDER_METADATA, Advance, StepSizeEnv
from stepgym.envs.spec import EnvSpec
from stepgym.errors import ConfigError
from stepgym.features import FeatureSet
from stepgym.integrators.base import NO_WORK, Work
from stepgym.rewards import WeightedReward

logger = logging.getLogger(__name__)


class CrossEntropyEnv(StepSizeEnv[CEState, CETransition]):
    r"""
    ## Description

    An agent sets, step by step, the step size of a gradient optimizer training a small
    classifier with the cross-entropy loss. Besides the usual learning-rate action it can act
    in units of the softmax convergence radius (Sao, "Ghosts of Softmax", arXiv 2603.13552):
    along the update direction ``v`` the loss's Taylor series converges only within
    ``rho_a = pi T / max_x Delta_a(x; v)``, where ``Delta_a`` is the spread of the directional
    logit derivatives (one forward-mode JVP). The dimensionless step ``r = tau / rho_a``
    (``tau = ||actual update||``) transfers across models and optimizers: ``r < 1`` is safe,
    collapse sets in between 1 and 10.

    Each step: forward/backward on a mini-batch, the optimizer's step at the chosen lr (or the
    base lr in radius mode) measured as the actual update ``p``, ``rho_a`` along
    ``v = p / ||p||`` at the old weights over the sample set (``sample_set``: batch / probe /
    train; ``radius_method``: exact forward-mode JVP or cheap finite differences), then
    ``theta = theta_old + s p`` (``s = r rho_a / ||p||`` in radius mode, times
    ``min(1, rho_a / tau)`` with ``update_cap="rho_a"``), then validation every ``val_every``
    steps (default 10) and after the last one. BatchNorm: the radius
    differentiates the logits in the model's training mode (batch statistics, running
    statistics untouched). Training lives in :mod:`stepgym.crossentropy.trainer`, the radius in
    :mod:`stepgym.radius`, the optimizers in :mod:`stepgym.integrators.optimizers`.

    Tasks (``task``): digits, breast_cancer, separable, worst_case, blobs, custom (``X``, ``y``).
    Models (``model``): linear, mlp, mlp_layernorm, cnn, cnn_batchnorm, transformer.
    Optimizers (``optimizer``): sgd, momentum, adam, adamw, sgdp, adamp, ngd.

    ## Action Space

    | action | space | decoded setting |
    |---|---|---|
    | continuous | Box(-1, 1, (1,), float32) | lr, log-uniform on [lr*lr_range[0], lr*lr_range[1]] |
    | discrete | Discrete(n_actions) | lr on a log grid over the same range |
    | radius | Box(-1, 1, (1,)) | r, log-uniform on r_range = [0.01, 10]: tau := r rho_a |

    With the default ``lr_range=(1e-2, 1e2)`` action 0 (the middle index) is the base ``lr``
    (a multiplier window around it). ``radius_action_kind="discrete"`` makes the radius action
    a ``Discrete(n_actions)`` grid.

    A fixed learning rate is the constant action ``env.unwrapped.action_map.encode(lr)``.

    ## Observation Space

    ``Box`` of float32 built from the selected features (``features=...``), each clipped into
    its bounds (logs are base 10):

    | feature | low | high | meaning |
    |---|---|---|---|
    | log_rho_a | -8 | 6 | radius along the last update |
    | log_r | -6 | 6 | normalised step of the last update |
    | loss | 0 | 100 | mini-batch loss |
    | loss_change | -100 | 100 | change of the mini-batch loss |
    | accuracy | 0 | 1 | mini-batch accuracy |
    | val_accuracy | 0 | 1 | validation accuracy |
    | log_grad_norm | -10 | 6 | gradient norm |
    | log_delta_a | -8 | 8 | max logit-derivative spread |
    | progress | 0 | 1 | step / max_steps |
    | last_action | -1 | 1 | previous action |
    | log_sharpness (optional) | -8 | 8 | top Hessian eigenvalue (HVP power iteration) |
    | log_effective_step (optional) | -12 | 6 | lr / ‖w‖² of scale-invariant weights |

    ## Rewards

    ``reward = sum_k w_k term_k`` with terms ``val_accuracy``, ``val_accuracy_gain``
    (``acc_val(t+1) - acc_val(t)``), ``loss_progress`` (``log(L_val(t)/L_val(t+1))``),
    ``step_cost`` (-1), ``evaluation_cost`` (-passes), ``divergence`` (-1 on divergence).
    Presets: ``"accuracy"`` (default) = val_accuracy_gain + divergence, which telescopes to
    ``final - initial validation accuracy`` (minus 1 on divergence); ``"loss"`` =
    loss_progress + 10 divergence; ``"accuracy_cost"`` = val_accuracy + 0.01 step_cost +
    10 divergence. ``info["reward_terms"]`` holds the weighted terms.

    The validation terms read the latest validation measurement: the validation pass runs
    after every ``val_every``-th step and always after the last step, on the whole held-out
    split (``val_size=m``: a fixed random subset of m samples in between; the last step still
    uses the whole split). Between measurements ``val_accuracy_gain`` and ``loss_progress`` are
    0 and ``val_accuracy`` holds the last value; at a measurement they compare with the
    previous measurement, so the sum over an episode is unchanged (``"accuracy"`` still sums
    to final - initial accuracy, both exact). ``val_every=1`` measures after every step.

    ## Starting State

    ``reset(seed)`` draws the train/validation split, the initial weights (PyTorch default
    initialisation), the batch order and the probe set from ``np_random``: the same seed gives
    the same numbers. The observation at reset has ``rho_a = inf`` and ``r = 0``.

    Problem distribution (``tasks``, ``models``, ``optimizers``, ``held_out``, ``split``):
    each reset first draws the episode's (task, model, optimizer) uniformly from the split's
    problems with ``np_random``, then builds the run as above, so the same seed gives the same
    problem and the same numbers; ``reset(options={"problem": (task, model, optimizer)})``
    pins one problem of the split instead. ``split="train"`` never draws a ``held_out``
    (task, model) pair, ``split="test"`` draws only those. ``env.unwrapped.problem`` and
    ``info["problem"]`` (``"task/model/optimizer"``) name the episode's problem. Every feature
    is a per-step scalar, so the observation has the same size on every problem (the loss
    and accuracy still carry the task's class count: chance level and log K differ). Every
    model fits every task (image models zero-pad vectors to the next square).

    ## Episode End

    Terminated with ``info["termination_reason"] == "diverged"`` when a loss, gradient or weight
    becomes non-finite or a loss exceeds ``divergence_loss`` (no exception is raised);
    ``"invalid_action"`` for an action outside the space (a wrong shape, not a number, NaN),
    scored as a divergence that also charges the remaining steps at the last step's passes, so
    it never pays better than a real step. Truncated with ``"step_budget"`` after
    ``max_steps`` steps.

    ## Arguments

    ``gymnasium.make("stepgym/CrossEntropy-v0", **kwargs)``; every field of
    :class:`stepgym.crossentropy.config.CrossEntropyConfig` is a keyword (task, model,
    optimizer, action, lr, lr_range, r_range, n_actions, max_steps, batch_size, sample_set,
    radius_method, temperature, spike_factor, spike_step, spike_mode, grad_clip, update_cap,
    divergence_loss, features, reward, val_every, val_size, X, y, tasks, models, optimizers,
    held_out, split, ...). ``info`` per step holds
    ``rho_a, r, tau, lr, loss, accuracy, val_accuracy, val_loss`` (the latest measurement,
    taken after step ``val_step``), ``step, delta_a, grad_norm`` and the pass counters
    ``evaluations`` (= ``cost``), ``forward_passes, backward_passes, jvp_passes, hvp_passes``
    (cumulative, deterministic), plus ``optimizer_lr`` (the lr the optimizer stepped with),
    ``scale`` (s), ``raw_tau`` (||p||), ``r_target``, ``spike``. ``lr`` is the effective rate
    of the committed update (``optimizer_lr * s``). Wall time is kept out of ``info`` (not
    reproducible): ``env.unwrapped.last_work``.

    ``render_mode="rgb_array"``: ``env.render()`` returns a 640 x 480 RGB picture of the loss
    and accuracy curves so far and the step chosen at each optimizer step.

    Perturbations: ``spike_factor=k`` from ``spike_step`` on (``spike_mode="persistent"``) or
    for that step only (``"single"``) multiplies the learning rate; in radius mode it multiplies
    the raw update before the rescale, which therefore absorbs it. ``temperature=T`` divides the
    logits by ``T`` (``rho_a = pi T / Delta_a``).

    ## Version History

    * v0: initial version. Revised without a version bump (the package is pre-1.0): the
      validation pass runs every ``val_every`` (10) steps and at the last step instead of every
      step, so the validation terms of the reward arrive at that cadence (their episode sums
      are unchanged; ``val_every=1`` restores the old timing); an invalid action is scored no
      better than a divergence. Added the problem distribution (``tasks``, ``models``,
      ``optimizers``, ``held_out``, ``split``); without it nothing changes.
    """

    metadata = RENDER_METADATA
    end_reasons = END_REASONS

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        self._set_render_mode(render_mode)
        self.config = CrossEntropyConfig.from_kwargs(**kwargs)
        cfg = self.config
        if cfg.action == "radius":
            action_map = LogActionMap(*cfg.r_range, kind=cfg.radius_action_kind, n=cfg.n_actions)
        else:
            low, high = cfg.lr_range
            action_map = LogActionMap(
                cfg.base_lr * low, cfg.base_lr * high, kind=cfg.action, n=cfg.n_actions
            )
        weights: Mapping[str, float] | str = (
            cfg.reward if isinstance(cfg.reward, str) else dict(cfg.reward)
        )
        super().__init__(
            action_map,
            FeatureSet(CE_FEATURES, cfg.features),
            WeightedReward(REWARD_TERMS, weights, REWARD_PRESETS),
        )
        self.trainer: TrainingRun | None = None
        """The episode's training run, driven only through :class:`TrainingRun`."""
        self.problem = Problem(cfg.task, cfg.model, cfg.optimizer)
        """The (task, model, optimizer) of the current episode (drawn at reset from the
        problem distribution when one is configured)."""
        self._problem_configs: dict[Problem, CrossEntropyConfig] = {}
        self.last_work: Work = NO_WORK
        """Work of the latest step (passes and wall time; kept out of ``info`` because wall
        time is not reproducible)."""

    def _reset_process(self, options: Mapping[str, Any]) -> CEState:
        self.trainer = Trainer(self._episode_config(options), self.np_random)
        return self.trainer.state

    def _episode_config(self, options: Mapping[str, Any]) -> CrossEntropyConfig:
        """The config of the episode: the env's own, or with a problem drawn (or pinned by
        ``options["problem"]``) from the split. A single-problem env draws nothing, so its
        random stream is untouched."""
        cfg = self.config
        if not cfg.multi_problem:
            if "problem" in options:
                raise ConfigError(
                    "options['problem'] pins a problem of a distribution; this env has one "
                    "fixed problem (pass tasks=[...], models=[...] or optimizers=[...])."
                )
            return cfg
        pool = cfg.problems()
        if "problem" in options:
            problem = Problem(*options["problem"])
            if problem not in pool:
                raise ConfigError(
                    f"options['problem']={tuple(problem)!r} is not in split {cfg.split!r}; "
                    f"choose one of {[tuple(p) for p in pool]}."
                )
        else:
            problem = pool[int(self.np_random.integers(len(pool)))]
        self.problem = problem
        if problem not in self._problem_configs:
            self._problem_configs[problem] = cfg.for_problem(problem)
        return self._problem_configs[problem]

    def _advance(self, setting: float) -> Advance[CEState, CETransition]:
        trainer = self._require_trainer()
        outcome = trainer.step(setting, self.action_map.to_unit(setting))
        reason: str | None = None
        if outcome.diverged:
            reason = "diverged"
        elif trainer.step_count >= self.config.max_steps:
            reason = "step_budget"
        self.last_work = outcome.work
        return Advance(outcome.state, outcome.transition, reason)

    def _info(self, state: CEState) -> dict[str, Any]:
        info = self._require_trainer().metrics()
        if self.config.multi_problem:
            info["problem"] = "/".join(self.problem)
        return info

    def _failure_transition(self, reason: str) -> CETransition:
        return self._require_trainer().failure_transition()

    def _trace_point(self, state: CEState, info: Mapping[str, Any]) -> dict[str, float]:
        return trace_point(info)

    def _render_frame(self, trace: list[Any]) -> np.ndarray:
        return render_curves(trace, radius_action=self.config.action == "radius")

    def _require_trainer(self) -> TrainingRun:
        if self.trainer is None:
            raise RuntimeError("the environment has no training run; call reset() first.")
        return self.trainer

    def _close_process(self) -> None:
        if self.trainer is not None:
            self.trainer.close()
            self.trainer = None


ENV_SPEC = EnvSpec(
    id="stepgym/CrossEntropy-v0",
    entry_point="stepgym.envs.cross_entropy:CrossEntropyEnv",
    end_reasons=END_REASONS,
    domain=CROSS_ENTROPY_DOMAIN,
)
