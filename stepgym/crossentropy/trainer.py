"""One training run of a cross-entropy classifier, advanced one optimizer step at a time.

:class:`Trainer` owns the data, the model and the optimizer of an episode. Each
:meth:`Trainer.step` does, in order:

1. forward + backward on the next mini-batch (logits divided by the temperature ``T``);
2. optional gradient-norm clipping; the optimizer's ``prepare`` hook (ngd's beta);
3. the optimizer step at learning rate ``lr x spike`` -- the action's lr, or the base lr in
   radius mode -- measuring the ACTUAL update ``p`` (:class:`OptimizerIntegrator`);
4. one JVP of the logits along ``v = p / ||p||`` at the OLD parameters over the sample set:
   ``rho_a = pi T / max Delta_a`` (:func:`radius_along_update`, :mod:`stepgym.radius`). On
   the batch the training forward is :func:`stepgym.radius.forward_recording` (the same ops
   as ``model(x)``), whose layer inputs spare the layer-rule JVP its primal pass;
5. the commit ``theta = theta_old + s p`` with ``s = r rho_a / ||p||`` in radius mode (else 1),
   times ``min(1, rho_a / (s ||p||))`` when ``update_cap="rho_a"``;
6. the divergence check and, every ``val_every`` steps and after the last one, the
   validation loss/accuracy (eval mode; in between the latest measurement is held).

The parts, one job each: :class:`~stepgym.crossentropy.batches.Batches` (data: batches,
the radius's sample set, validation sets), :class:`~stepgym.crossentropy.update.RadiusUpdate`
(steps 1-5) and :mod:`stepgym.crossentropy.measurements` (pass counters, validation, the
costly measurements that observed features declare in
:data:`stepgym.crossentropy.features.FEATURE_NEEDS`).

Divergence (a non-finite loss, gradient or weight, or a loss above ``divergence_loss``) is
reported in the outcome, never raised. Work is counted in passes: forward, backward, JVP and
Hessian-vector products over the step's samples (validation forwards are counted apart).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from stepgym.crossentropy.batches import Batches
from stepgym.crossentropy.config import CrossEntropyConfig
from stepgym.crossentropy.features import CEState, needed_measurements
from stepgym.crossentropy.measurements import AFTER_UPDATE, Counters, validation_loss_accuracy
from stepgym.crossentropy.models import ModelSpec, build_model
from stepgym.crossentropy.rewards import CETransition
from stepgym.crossentropy.sharpness import top_eigenvalue
from stepgym.crossentropy.tasks import TaskData, TaskRequest, load_task
from stepgym.crossentropy.update import (
    FD_EPS,
    Forward,
    RadiusUpdate,
    fd_step,
    radius_along_update,
)
from stepgym.integrators.base import NO_WORK, Work
from stepgym.integrators.optimizers import OptimizerIntegrator
from stepgym.radius import normalized_step

__all__ = [
    "FD_EPS",
    "Counters",
    "StepOutcome",
    "Trainer",
    "TrainingRun",
    "fd_step",
    "radius_along_update",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepOutcome:
    """What one :meth:`Trainer.step` produced."""

    state: CEState
    transition: CETransition
    diverged: bool
    info: dict[str, Any] = field(default_factory=dict)
    work: Work = NO_WORK


@runtime_checkable
class TrainingRun(Protocol):
    """What CrossEntropy-v0 drives, one episode's training run: advance (:meth:`step`),
    observe (:attr:`state`) and measure (:meth:`metrics`), the error side (a divergence in
    the step's outcome; :meth:`failure_transition` for an action that could not be decoded)
    and :meth:`close`. The environment holds no training arithmetic; :class:`Trainer` is the
    implementation.
    """

    state: CEState
    """What the features read after the latest step (or at the start)."""
    step_count: int
    """Optimizer steps taken."""

    def step(self, setting: float, unit_action: float) -> StepOutcome:
        """One optimizer step with ``setting`` (the lr, or r in radius mode); ``unit_action``
        is the setting as a unit action, recorded for the features."""

    def metrics(self) -> dict[str, Any]:
        """The per-step info entries."""

    def failure_transition(self) -> CETransition:
        """The transition of an action that could not be decoded: no better than a real
        divergence."""

    def close(self) -> None:
        """End the run; it takes no more steps."""


class Trainer:
    """Data, model and optimizer of one episode, seeded from ``rng`` (a :class:`TrainingRun`).

    Args:
        config: the episode's settings.
        rng: the environment's ``np_random``; the split, initial weights, batch order and
            probe set all derive from it.
    """

    def __init__(self, config: CrossEntropyConfig, rng: np.random.Generator) -> None:
        self.config = config
        request = TaskRequest(config.n_samples, config.label_noise, config.X, config.y)
        self.data: TaskData = load_task(config.task, request, rng, config.val_fraction)
        seed = int(rng.integers(0, 2**62))
        self.generator = torch.Generator().manual_seed(seed)
        spec = ModelSpec(
            self.data.n_features, self.data.n_classes, self.data.image_side, config.hidden
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = build_model(config.model, spec)
        self.integrator = OptimizerIntegrator(self.model, config.optimizer, config.base_lr)
        self.batches = Batches(config, self.data, self.generator)
        self.counters = Counters()
        self.update = RadiusUpdate(config, self.model, self.integrator, self.counters)
        self.needs = needed_measurements(config.features)
        """The costly measurements the observed features declare (see ``FEATURE_NEEDS``)."""
        self.step_count = 0
        self.closed = False
        self.val_step = 0
        """The step after which ``val_loss`` / ``val_accuracy`` were measured (0: at reset)."""
        self.val_loss, self.val_accuracy = self._validate(full=True)
        self.loss = self.val_loss
        self.val_loss_prev, self.val_accuracy_prev = self.val_loss, self.val_accuracy
        self.last_step: dict[str, Any] = {
            "tau": 0.0, "lr": 0.0, "optimizer_lr": 0.0, "scale": 1.0,
            "raw_tau": 0.0, "r_target": None, "spike": 1.0, "step_evaluations": 0,
        }  # fmt: skip
        self.state = CEState(
            rho_a=math.inf, r=0.0, loss=self.loss, loss_change=0.0, accuracy=self.val_accuracy,
            val_accuracy=self.val_accuracy, val_loss=self.val_loss, grad_norm=0.0,
            delta_a=0.0, progress=0.0, last_action=0.0,
        )  # fmt: skip

    @property
    def batch_size(self) -> int:
        return self.batches.batch_size

    @property
    def probe(self) -> torch.Tensor:
        return self.batches.probe

    # -- measurements -----------------------------------------------------------------------
    def _validation_due(self) -> bool:
        """Whether the step just taken is measured: every ``val_every`` steps and the last."""
        step = self.step_count
        return step % self.config.val_every == 0 or step >= self.config.max_steps

    def _validate(self, *, full: bool) -> tuple[float, float]:
        """Validation (loss, accuracy): the whole split, or the ``val_size`` subset."""
        x, y = self.batches.validation(full=full)
        result = validation_loss_accuracy(self.model, x, y, self.config.temperature)
        self.counters.eval_forward += 1
        self.val_step = self.step_count
        return result

    def _sharpness(self, fwd: Forward) -> float:
        cfg = self.config
        value = top_eigenvalue(
            self.model, fwd.x, fwd.y, cfg.temperature, cfg.sharpness_iters, self.generator
        )
        self.counters.hvp += 2 * cfg.sharpness_iters + 1
        return value

    # -- the step ---------------------------------------------------------------------------
    def spike(self, step: int) -> float:
        """Learning-rate spike factor at 0-based ``step``."""
        cfg = self.config
        hit = step >= cfg.spike_step if cfg.spike_mode == "persistent" else step == cfg.spike_step
        return cfg.spike_factor if hit else 1.0

    def step(self, setting: float, unit_action: float) -> StepOutcome:
        """Advance training by one optimizer step; ``setting`` is the lr, or r in radius mode."""
        if self.closed:
            raise RuntimeError("this training run is closed; reset() the environment.")
        cfg, start = self.config, time.perf_counter()
        before = Counters(**vars(self.counters))
        spike = self.spike(self.step_count)
        self.step_count += 1
        if not self.model.training:  # (train() walks every submodule: skip it when set)
            self.model.train()
        x, y = self.batches.next()
        fwd = self.update.forward(x, y)
        info: dict[str, Any] = {"spike": spike}
        measured: dict[str, float] = {}
        if "sharpness" in self.needs and math.isfinite(fwd.loss):
            measured["sharpness"] = self._sharpness(fwd)
        if not math.isfinite(fwd.loss) or fwd.loss > cfg.divergence_loss:
            return self._diverged(unit_action, fwd.loss, fwd.accuracy, info, before, start)
        result = self.update.commit(
            fwd, self.batches.sample_set(x), setting, spike, self.state.rho_a
        )
        if result.diverged:
            return self._diverged(unit_action, fwd.loss, fwd.accuracy, info, before, start)
        self.val_loss_prev, self.val_accuracy_prev = self.val_loss, self.val_accuracy
        if self._validation_due():
            self.val_loss, self.val_accuracy = self._validate(full=self.step_count >= cfg.max_steps)
        diverged = (
            not self.integrator.all_finite()
            or not math.isfinite(self.val_loss)
            or self.val_loss > cfg.divergence_loss
        )
        lr = result.optimizer_lr * result.scale
        for name in self.needs:
            if name in AFTER_UPDATE:
                measured[name] = AFTER_UPDATE[name](self.model, self.integrator, lr)
        info.update(
            {
                "optimizer_lr": result.optimizer_lr,
                "lr": lr,
                "scale": result.scale,
                "raw_tau": result.raw_tau,
                "r_target": setting if cfg.action == "radius" else None,
            }
        )
        info.update(self.integrator.state_summary())
        tau = result.scale * result.raw_tau
        state = CEState(
            rho_a=result.rho, r=normalized_step(tau, result.rho), loss=fwd.loss,
            loss_change=fwd.loss - self.loss, accuracy=fwd.accuracy,
            val_accuracy=self.val_accuracy, val_loss=self.val_loss, grad_norm=result.grad_norm,
            delta_a=result.delta_a, progress=self.step_count / cfg.max_steps,
            last_action=unit_action, **measured,
        )  # fmt: skip
        self.loss = fwd.loss
        return self._outcome(state, diverged, tau, info, before, start)

    # -- records ----------------------------------------------------------------------------
    def _diverged(
        self, unit_action: float, loss: float, accuracy: float,
        info: dict[str, Any], before: Counters, start: float,
    ) -> StepOutcome:  # fmt: skip
        self.val_loss_prev, self.val_accuracy_prev = self.val_loss, self.val_accuracy
        self.val_loss, self.val_accuracy = math.inf, 0.0
        self.val_step = self.step_count
        prev = self.state
        state = CEState(
            rho_a=prev.rho_a, r=math.nan, loss=loss, loss_change=math.nan, accuracy=accuracy,
            val_accuracy=0.0, val_loss=math.inf, grad_norm=math.nan, delta_a=prev.delta_a,
            progress=self.step_count / self.config.max_steps, last_action=unit_action,
        )  # fmt: skip
        info.update(
            {"optimizer_lr": math.nan, "lr": math.nan, "scale": math.nan, "raw_tau": math.nan}
        )
        return self._outcome(state, True, math.nan, info, before, start)

    def _outcome(
        self, state: CEState, diverged: bool, tau: float, info: dict[str, Any],
        before: Counters, start: float,
    ) -> StepOutcome:  # fmt: skip
        now = self.counters
        spent = now.evaluations - before.evaluations
        self.state = state
        if diverged:
            logger.info("training diverged at step %d (loss %s)", self.step_count, state.loss)
        transition = CETransition(
            val_accuracy=state.val_accuracy,
            prev_val_accuracy=self.val_accuracy_prev,
            val_loss=self.val_loss,
            prev_val_loss=self.val_loss_prev,
            diverged=diverged,
            evaluations=float(spent),
        )
        info["tau"] = tau
        info["step_evaluations"] = spent
        self.last_step = info
        wall = time.perf_counter() - start
        return StepOutcome(state, transition, diverged, info, Work(float(spent), 1, wall))

    def failure_transition(self) -> CETransition:
        """Scored as a divergence that also charges the rest of the budget at the last step's
        price, so an undecodable action (e.g. NaN) never pays better than a real step."""
        remaining = max(self.config.max_steps - self.step_count, 1)
        per_step = max(float(self.last_step.get("step_evaluations") or 0.0), 1.0)
        return CETransition(
            0.0, self.val_accuracy, math.inf, self.val_loss, True, remaining * per_step
        )

    def close(self) -> None:
        """End the run: free the optimizer's state and the gradients; :meth:`step` raises."""
        self.integrator.optimizer.state.clear()
        self.model.zero_grad(set_to_none=True)
        self.closed = True

    def metrics(self) -> dict[str, Any]:
        """The per-step info entries (NaN only on a diverged step).

        ``sharpness`` / ``effective_step`` appear only when a selected feature needs them.
        ``cost`` is the cumulative training-side pass count (= ``evaluations``).
        """
        s, c = self.state, self.counters
        metrics: dict[str, Any] = {
            **self.last_step,
            "step": self.step_count,
            "val_step": self.val_step,
            "rho_a": s.rho_a,
            "r": s.r,
            "loss": s.loss,
            "accuracy": s.accuracy,
            "val_loss": s.val_loss,
            "val_accuracy": s.val_accuracy,
            "delta_a": s.delta_a,
            "grad_norm": s.grad_norm,
            "evaluations": c.evaluations,
            "forward_passes": c.forward,
            "backward_passes": c.backward,
            "jvp_passes": c.jvp,
            "hvp_passes": c.hvp,
            "eval_forward_passes": c.eval_forward,
        }
        metrics["cost"] = c.evaluations
        for name in self.needs:
            metrics[name] = getattr(s, name)
        return metrics
