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

Divergence (a non-finite loss, gradient or weight, or a loss above ``divergence_loss``) is
reported in the outcome, never raised. Work is counted in passes: forward, backward, JVP and
Hessian-vector products over the step's samples (validation forwards are counted apart).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from stepgym.crossentropy.config import CrossEntropyConfig
from stepgym.crossentropy.features import CEState
from stepgym.crossentropy.models import ModelSpec, build_model
from stepgym.crossentropy.rewards import CETransition
from stepgym.crossentropy.sharpness import top_eigenvalue
from stepgym.crossentropy.tasks import TaskData, TaskRequest, load_task
from stepgym.errors import ConfigError
from stepgym.integrators.base import NO_WORK, Work
from stepgym.integrators.optimizers import OptimizerIntegrator, Proposal
from stepgym.radius import (
    difference_slopes_inplace,
    forward_recording,
    logit_spread,
    max_logit_spread,
    normalized_step,
    rho_a,
    tensor_norm,
)

logger = logging.getLogger(__name__)

FD_EPS = 1e-3
"""Finite-difference step of ``radius_method="fd"`` relative to the previous step's rho_a:
forward-difference truncation error ~ FD_EPS pi / 2 relative to Delta_a (~0.2%), round-off
~ 1e-7 |z| / (FD_EPS pi); the first step, with no previous radius, uses
1e-3 max(||theta||, 1)."""


def fd_step(previous_rho: float, old: list[torch.Tensor]) -> float:
    """The finite-difference step for ``radius_method="fd"`` (see :data:`FD_EPS`)."""
    if math.isfinite(previous_rho) and previous_rho > 0.0:
        return FD_EPS * previous_rho
    return 1e-3 * max(tensor_norm(old), 1.0)


def radius_along_update(
    model: torch.nn.Module,
    integrator: OptimizerIntegrator,
    inputs: torch.Tensor,
    proposal: Proposal,
    *,
    method: str = "jvp",
    temperature: float = 1.0,
    activations: list[torch.Tensor] | None = None,
    base_logits: torch.Tensor | None = None,
    previous_rho: float = math.inf,
) -> tuple[float, float, int]:
    """``(rho_a, max Delta_a, extra forwards)`` along the proposed update at theta_old.

    ``"jvp"``: one exact JVP over ``inputs`` (layer rules reusing the training forward's
    ``activations`` when given, see :func:`stepgym.radius.forward_recording`). ``"fd"``:
    in-place differences with step :func:`fd_step` -- forward differences from
    ``base_logits`` (the training logits of ``inputs``, one extra forward) or central ones
    (two); the parameters are left moved, commit with ``moved=True``.
    """
    norm = proposal.norm
    if method == "jvp":
        spread = max_logit_spread(
            model, inputs, proposal.update_list, proposal.old_list, activations=activations
        )
        worst = spread / norm
        return rho_a(worst, temperature), worst, 0
    if method != "fd":
        raise ConfigError(f"unknown radius method {method!r}; choose one of jvp, fd.")
    if proposal.old_flat is not None and integrator.flat is not None:
        assert proposal.update_flat is not None
        params, old, update = [integrator.flat], [proposal.old_flat], [proposal.update_flat]
    else:
        params = integrator.parameters()
        old, update = list(proposal.old_list), list(proposal.update_list)
    eps = fd_step(previous_rho, old)
    slopes = difference_slopes_inplace(model, inputs, params, old, update, norm, eps, base_logits)
    worst = float(logit_spread(slopes).max())
    return rho_a(worst, temperature), worst, 1 if base_logits is not None else 2


@dataclass
class Counters:
    """Cumulative passes over data (deterministic cost units)."""

    forward: int = 0
    backward: int = 0
    jvp: int = 0
    hvp: int = 0
    eval_forward: int = 0

    @property
    def evaluations(self) -> int:
        """Training-side passes: forward + backward + JVP + HVP (validation excluded)."""
        return self.forward + self.backward + self.jvp + self.hvp


@dataclass(frozen=True)
class StepOutcome:
    """What one :meth:`Trainer.step` produced."""

    state: CEState
    transition: CETransition
    diverged: bool
    info: dict[str, Any] = field(default_factory=dict)
    work: Work = NO_WORK


class Trainer:
    """Data, model and optimizer of one episode, seeded from ``rng``.

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
        n_train = len(self.data.y_train)
        self.batch_size = min(config.batch_size or n_train, n_train)
        self._epoch: tuple[torch.Tensor, torch.Tensor] | None = None
        self._cursor = 0
        probe = torch.randperm(n_train, generator=self.generator)[: config.probe_size]
        self.probe = torch.sort(probe).values
        n_val = len(self.data.y_val)
        self._val_subset: tuple[torch.Tensor, torch.Tensor] | None = None
        if config.val_size is not None and config.val_size < n_val:
            pick = torch.randperm(n_val, generator=self.generator)[: config.val_size]
            pick = torch.sort(pick).values
            self._val_subset = (self.data.x_val[pick], self.data.y_val[pick])
        self.counters = Counters()
        self.step_count = 0
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

    # -- data -------------------------------------------------------------------------------
    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
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

    def _sample_set(self, x_batch: torch.Tensor) -> torch.Tensor:
        if self.config.sample_set == "batch":
            return x_batch
        if self.config.sample_set == "probe":
            return self.data.x_train[self.probe]
        return self.data.x_train

    def _validation_due(self) -> bool:
        """Whether the step just taken is measured: every ``val_every`` steps and the last."""
        step = self.step_count
        return step % self.config.val_every == 0 or step >= self.config.max_steps

    def _validate(self, *, full: bool) -> tuple[float, float]:
        """Validation (loss, accuracy) in eval mode: the whole split, or the ``val_size`` subset."""
        x, y = (self.data.x_val, self.data.y_val)
        if not full and self._val_subset is not None:
            x, y = self._val_subset
        self.model.eval()
        with torch.no_grad():
            logits = self.model(x) / self.config.temperature
            loss = float(F.cross_entropy(logits, y))
            accuracy = float((logits.argmax(dim=-1) == y).float().mean())
        self.model.train()
        self.counters.eval_forward += 1
        self.val_step = self.step_count
        return loss, accuracy

    # -- the step ---------------------------------------------------------------------------
    def spike(self, step: int) -> float:
        """Learning-rate spike factor at 0-based ``step``."""
        cfg = self.config
        hit = step >= cfg.spike_step if cfg.spike_mode == "persistent" else step == cfg.spike_step
        return cfg.spike_factor if hit else 1.0

    def step(self, setting: float, unit_action: float) -> StepOutcome:
        """Advance training by one optimizer step; ``setting`` is the lr, or r in radius mode."""
        cfg, start = self.config, time.perf_counter()
        before = Counters(**vars(self.counters))
        spike = self.spike(self.step_count)
        self.step_count += 1
        if not self.model.training:  # (train() walks every submodule: skip it when set)
            self.model.train()
        x, y = self._next_batch()
        params = [p for _, p in self.integrator.named]

        activations: list[torch.Tensor] | None = None
        if cfg.radius_method == "jvp" and cfg.sample_set == "batch":
            # the layer-rule JVP reuses this forward's layer inputs (same ops as model(x))
            raw_logits, activations = forward_recording(self.model, x)
        else:
            raw_logits = self.model(x)
        logits = raw_logits / cfg.temperature
        loss_t = F.cross_entropy(logits, y)
        loss = float(loss_t.detach())
        accuracy = float((logits.argmax(dim=-1) == y).float().mean())
        self.counters.forward += 1
        info: dict[str, Any] = {"spike": spike}
        sharpness = math.nan
        if "log_sharpness" in cfg.features and math.isfinite(loss):
            sharpness = top_eigenvalue(
                self.model, x, y, cfg.temperature, cfg.sharpness_iters, self.generator
            )
            self.counters.hvp += 2 * cfg.sharpness_iters + 1
        if not math.isfinite(loss) or loss > cfg.divergence_loss:
            return self._diverged(setting, unit_action, loss, accuracy, info, before, start)

        self.integrator.optimizer.zero_grad(set_to_none=True)
        loss_t.backward()
        self.counters.backward += 1
        clip = cfg.grad_clip if cfg.grad_clip is not None else math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, clip))
        grad_norm = min(grad_norm, clip)
        if not math.isfinite(grad_norm):
            return self._diverged(setting, unit_action, loss, accuracy, info, before, start)
        self.integrator.prepare(logits.detach(), y)

        optimizer_lr = (cfg.base_lr if cfg.action == "radius" else setting) * spike
        proposal = self.integrator.propose(optimizer_lr)
        raw_tau = proposal.norm
        if not math.isfinite(raw_tau):
            return self._diverged(setting, unit_action, loss, accuracy, info, before, start)
        rho, delta_a = math.inf, 0.0
        if raw_tau > 0.0:
            rho, delta_a = self._radius(x, raw_logits, activations, proposal)
            if not rho > 0.0:  # NaN or zero: the logits or their slopes blew up
                return self._diverged(setting, unit_action, loss, accuracy, info, before, start)
        scale = 1.0
        if cfg.action == "radius" and raw_tau > 0.0 and math.isfinite(rho):
            scale = setting * rho / raw_tau
        if cfg.update_cap == "rho_a" and raw_tau > 0.0:
            scale *= min(1.0, rho / (scale * raw_tau))
        self.integrator.commit(proposal, scale, moved=cfg.radius_method == "fd")
        tau = scale * raw_tau

        self.val_loss_prev, self.val_accuracy_prev = self.val_loss, self.val_accuracy
        if self._validation_due():
            self.val_loss, self.val_accuracy = self._validate(full=self.step_count >= cfg.max_steps)
        weights_ok = self.integrator.all_finite()
        diverged = (
            not weights_ok
            or not math.isfinite(self.val_loss)
            or self.val_loss > cfg.divergence_loss
        )
        info.update(
            {
                "optimizer_lr": optimizer_lr,
                "lr": optimizer_lr * scale,
                "scale": scale,
                "raw_tau": raw_tau,
                "r_target": setting if cfg.action == "radius" else None,
            }
        )
        info.update(self.integrator.state_summary())
        state = CEState(
            rho_a=rho,
            r=normalized_step(tau, rho),
            loss=loss,
            loss_change=loss - self.loss,
            accuracy=accuracy,
            val_accuracy=self.val_accuracy,
            val_loss=self.val_loss,
            grad_norm=grad_norm,
            delta_a=delta_a,
            progress=self.step_count / cfg.max_steps,
            last_action=unit_action,
            sharpness=sharpness,
            effective_step=self._effective_step(optimizer_lr * scale)
            if "log_effective_step" in cfg.features
            else math.nan,
        )
        self.loss = loss
        return self._outcome(state, diverged, tau, info, before, start)

    # -- helpers ----------------------------------------------------------------------------
    def _radius(
        self,
        x_batch: torch.Tensor,
        raw_logits: torch.Tensor,
        activations: list[torch.Tensor] | None,
        proposal: Proposal,
    ) -> tuple[float, float]:
        """(rho_a, max Delta_a) along the proposed update at the old parameters.

        ``"jvp"`` on the batch reuses the training forward's layer inputs; ``"fd"`` on the
        batch reuses its logits (forward differences, one extra forward); on the probe /
        train sets it takes central differences (two).
        """
        cfg, inputs = self.config, self._sample_set(x_batch)
        batch = cfg.sample_set == "batch"
        rho, worst, forwards = radius_along_update(
            self.model, self.integrator, inputs, proposal,
            method=cfg.radius_method, temperature=cfg.temperature,
            activations=activations if batch else None,
            base_logits=raw_logits.detach() if batch else None,
            previous_rho=self.state.rho_a,
        )  # fmt: skip
        if cfg.radius_method == "jvp":
            self.counters.jvp += 1
        self.counters.forward += forwards
        return rho, worst

    def _effective_step(self, lr: float) -> float:
        names = tuple(getattr(self.model, "scale_invariant", ())) or tuple(
            n for n, p in self.integrator.named if p.ndim > 1
        )
        weights = dict(self.integrator.named)
        steps = [lr / max(float(weights[n].detach().pow(2).sum()), 1e-30) for n in names]
        return float(np.mean(steps)) if steps else math.nan

    def _diverged(
        self, setting: float, unit_action: float, loss: float, accuracy: float,
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

    def metrics(self) -> dict[str, Any]:
        """The per-step info entries (NaN only on a diverged step).

        ``sharpness`` / ``effective_step`` appear only when their features are selected.
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
        if "log_sharpness" in self.config.features:
            metrics["sharpness"] = s.sharpness
        if "log_effective_step" in self.config.features:
            metrics["effective_step"] = s.effective_step
        return metrics
