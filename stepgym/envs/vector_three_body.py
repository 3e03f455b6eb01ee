"""All copies of a ThreeBody-v0 vector env decided in one compiled call, scored in NumPy.

:class:`ThreeBodyBatchStep` is what :class:`~stepgym.envs.vector.StepSizeVectorEnv` uses for
``stepgym/ThreeBody-v0`` when the configuration allows it (:meth:`ThreeBodyBatchStep.build`
says why not otherwise, and the vector env then steps copy by copy). One decision of every
copy is:

1. the actions decoded at once (libm's ``pow``, as ``LogActionMap.decode``);
2. one call of :class:`~stepgym.integrators.batch.RuleBatch`: each copy's compiled rule
   advance (``step_rules.c``, the single env's own loop), then its time, last step, energy,
   t_dyn and smallest separation read in C;
3. the records (:class:`~stepgym.threebody.records.ThreeBodyBatch`), the features
   (:data:`~stepgym.threebody.features.BATCH_FEATURES`) and the reward
   (:mod:`~stepgym.threebody.batch_rewards`) computed over all copies in NumPy, with the
   single environment's float operations, so observations, rewards and infos are the same
   bits;
4. Python per copy only where something is unusual: an undecodable action (that copy steps
   through its own ``transition``), REBOUND messages, a budget stop, a non-finite state or an
   episode end.

The copies' own records are not written every step: :meth:`ThreeBodyBatchStep.detach` writes
a copy's counters, state record and ``last_info`` back (the vector env does it before anyone
reads a copy), :meth:`ThreeBodyBatchStep.attach` reads them after a copy reset.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from stepgym.integrators import batch as compiled
from stepgym.integrators.rebound_integrators import ReboundIntegrator
from stepgym.integrators.step_rules import (
    FINE,
    N_STEPS,
    PER_STEP,
    RETIME_EVERY,
    STEP_RULES,
    T_END,
    VALUE,
)
from stepgym.threebody.batch_rewards import batch_reward, batch_terms
from stepgym.threebody.features import BATCH_FEATURES
from stepgym.threebody.records import ERROR_FLOOR, FAILURE_REASONS, ThreeBodyBatch

logger = logging.getLogger(__name__)

_DONE, _USER_STOP = 0, 5  # step_rules' DONE, REBOUND's user stop (the counter's budget stop)
_NOT_ADVANCED = "the simulated time did not advance in this decision"


def _py_min(first: Any, second: np.ndarray) -> np.ndarray:
    """Python's ``min(first, second)`` entry by entry."""
    return np.where(second < first, second, first)


def _unsupported(envs: list[Any]) -> str | None:
    """Why these copies cannot be stepped in one batch (None: they can)."""
    from stepgym.envs.three_body import ThreeBodyEnv
    from stepgym.integrators.rebound_backend import ReboundPropagator

    first = envs[0]
    cfg = first.config
    if any(type(env) is not ThreeBodyEnv or env.config != cfg for env in envs):
        return "the copies are not ThreeBodyEnv of one configuration"
    if any(env.render_mode is not None for env in envs):
        return "rendering records every step"
    if cfg.step_mode in ("raw", "residual") or cfg.phase_error:
        return f"step_mode={cfg.step_mode!r} / phase_error={cfg.phase_error}"
    propagator = first.propagator
    if not isinstance(propagator, ReboundPropagator) or not propagator.compiled:
        return "the integrator has no compiled REBOUND rule loop"
    if type(propagator.scheme).last_step is not ReboundIntegrator.last_step:
        return "the scheme reads its last step its own way"
    library = compiled.load_batch_library()
    if library is None:
        return "the batched C loop did not build"
    if not hasattr(library, STEP_RULES.get(cfg.rule or "timescale").c_function):
        return f"the {cfg.rule!r} rule has no compiled twin"
    if any(name not in BATCH_FEATURES for name in first.features.names):
        return "a feature has no batched twin"
    if batch_terms(first.reward_fn) is None:
        return "a reward term has no batched twin"
    return None


class ThreeBodyBatchStep:
    """One decision of every ThreeBody-v0 copy per call; see the module docstring."""

    def __init__(self, envs: list[Any]) -> None:
        from stepgym.integrators.native import function_address

        self.envs = envs
        n = self.n = len(envs)
        first = envs[0]
        self.config = cfg = first.config
        self.features = first.features
        self.action_map = first.action_map
        self.terms = batch_terms(first.reward_fn)
        self.truncations = first.end_reasons.truncation
        self.batch = compiled.RuleBatch(n)
        scheme = first.propagator.scheme
        self.enter_step_mode = type(scheme).enter_step_mode is not (
            ReboundIntegrator.enter_step_mode
        )
        rule = STEP_RULES.get(cfg.rule or "timescale").c_function
        self.scale = function_address(self.batch.library, rule)
        budget = first.propagator.budget
        self.budget = (budget.max_evaluations, budget.max_wall_time)
        fine = cfg.decision == "fine"
        requests = self.batch.requests
        requests[:, FINE] = 1.0 if fine else 0.0
        requests[:, T_END] = math.inf
        requests[:, N_STEPS] = cfg.steps_per_decision if fine else 0
        requests[:, RETIME_EVERY] = 1 if fine else cfg.retime_every
        requests[:, PER_STEP] = scheme.evaluations_per_step or 0.0
        self.fine = fine
        low, high = self.action_map.low, self.action_map.high
        self.log_low = math.log10(low)
        self.log_span = math.log10(high) - self.log_low
        self.grid = np.array(self.action_map.values.tolist())
        self.records = ThreeBodyBatch(n)
        self.energy0 = np.ones(n)
        self.evaluations = np.zeros(n)
        self.steps = np.zeros(n, dtype=np.int64)
        self.wall_time = np.zeros(n)
        self.instance: list[int | None] = [None] * n
        self.addresses = np.zeros(n, dtype=np.uint64)
        self.extras: dict[int, dict[str, Any]] = {}
        """Per-copy info entries beyond the usual ones in the latest step (message, warnings)."""
        self.parts: dict[str, np.ndarray] = {}
        """The latest step's weighted reward terms."""

    @classmethod
    def build(cls, envs: list[Any]) -> ThreeBodyBatchStep | None:
        """The batched step for ``envs``, or None (logged) if their configuration needs the
        copy-by-copy path."""
        reason = _unsupported(envs)
        if reason is not None:
            logger.debug("the vector env steps its copies one by one: %s", reason)
            return None
        return cls(envs)

    # -- copies in and out ---------------------------------------------------------------------
    def attach(self, i: int) -> None:
        """Take copy ``i``'s counters and record from its env (after a reset or a step of its
        own)."""
        env = self.envs[i]
        records = self.records
        self.energy0[i] = env._energy0
        records.decision[i] = env._decision
        self.evaluations[i] = env._evaluations
        self.steps[i] = env._steps
        self.wall_time[i] = env._wall_time
        records.setting[i] = env._setting
        self.instance[i] = env._instance
        records.store(i, env._state_record)
        records.end_reason[i] = env._end_reason
        records.failed[i] = env._end_reason in FAILURE_REASONS
        self.addresses[i] = env.propagator.address
        self.batch.caps[i] = env.propagator.scheme.step_cap_address()

    def detach(self, i: int) -> None:
        """Write copy ``i``'s counters, record and latest info back into its env."""
        env = self.envs[i]
        records = self.records
        reason = records.end_reason[i]
        env._decision = int(records.decision[i])
        env._evaluations = float(self.evaluations[i])
        env._steps = int(self.steps[i])
        env._wall_time = float(self.wall_time[i])
        env._setting = float(records.setting[i])
        env._done = reason is not None
        env._end_reason = reason
        records.restore(i, env._state_record)
        env.last_info = self.info(i)

    def end_reason(self, i: int) -> str | None:
        """Why copy ``i``'s episode ended in the latest decision (None: it goes on)."""
        reason: str | None = self.records.end_reason[i]
        return reason

    # -- one decision of the selected copies ------------------------------------------------
    def decode(self, actions: Any) -> tuple[np.ndarray, np.ndarray] | None:
        """(settings, decodable mask) of a batch of actions, or None if the batch itself has an
        unexpected shape or type (then every copy decodes its own action)."""
        arr = np.asarray(actions)
        if self.action_map.kind == "discrete":
            if arr.shape != (self.n,) or arr.dtype.kind not in "iu":
                return None
            valid = (arr >= 0) & (arr < self.action_map.n)
            return self.grid[np.where(valid, arr, 0)], valid
        if arr.shape != (self.n, 1) or arr.dtype.kind not in "iuf":
            return None
        value = arr[:, 0].astype(np.float64)
        valid = np.isfinite(value)
        unit = np.where(value > -1.0, value, -1.0)
        unit = np.where(unit < 1.0, unit, 1.0)
        exponent = self.log_low + (unit + 1.0) * 0.5 * self.log_span
        return compiled.pow_each(10.0, exponent), valid

    def advance(self, rows: np.ndarray, settings: np.ndarray, raw: np.ndarray) -> list[int]:
        """Advance copies ``rows`` (indices) with their decoded ``settings`` (all copies' array),
        write their raw feature rows into ``raw`` and their records; return the copies whose
        episode ended (their ``records.end_reason``)."""
        cfg, records, batch = self.config, self.records, self.batch
        records.decision[rows] += 1
        records.setting[rows] = settings[rows]
        batch.requests[rows, VALUE] = settings[rows]
        if not self.fine:
            batch.requests[rows, T_END] = _py_min(
                records.decision[rows] * cfg.slice_time, np.full(len(rows), cfg.horizon)
            )
        batch.sims[:] = 0
        batch.sims[rows] = self.addresses[rows]
        if self.enter_step_mode:  # IAS15 / BS: their step mode, as the propagator sets it
            for i in rows.tolist():
                env = self.envs[i]
                env.propagator.scheme.enter_step_mode(env.propagator.sim)
        batch.run(self.scale, *self.budget)
        out = batch.out[rows]
        t_before = records.t[rows]
        self.evaluations[rows] += out[:, compiled.EVALS]
        self.steps[rows] += out[:, compiled.STEPS].astype(np.int64)
        self.wall_time[rows] += out[:, compiled.WALL]
        energy0 = self.energy0[rows]
        energy_error = np.abs((out[:, compiled.ENERGY] - energy0) / energy0)
        energy_error[~np.isfinite(energy_error)] = np.inf
        log_before = records.log_energy_error[rows]
        floored = np.where(energy_error < ERROR_FLOOR, ERROR_FLOOR, energy_error)
        log_after = np.where(np.isfinite(energy_error), compiled.log10_each(floored), 300.0)
        t, last_step = out[:, compiled.T], out[:, compiled.DT_LAST]
        records.energy_error[rows] = energy_error
        records.log_error_before[rows] = log_before
        records.log_energy_error[rows] = log_after
        records.delta_log_energy_error[rows] = log_after - log_before
        records.last_action[rows] = self._to_unit(settings[rows])
        records.t_dyn[rows] = out[:, compiled.T_DYN]
        records.min_separation[rows] = out[:, compiled.MIN_SEP]
        records.t[rows] = t
        records.last_step[rows] = last_step
        records.progress[rows] = _py_min(1.0, t / cfg.horizon)
        records.evaluations[rows] = out[:, compiled.EVALS]
        records.total_evaluations[rows] = self.evaluations[rows]
        code = out[:, compiled.CODE]
        advanced = t > t_before
        if not self.fine:  # a slice that an earlier step already passed is not a stall
            advanced |= t >= batch.requests[rows, T_END]
        unusual = (
            ((code != _DONE) & (code != _USER_STOP))
            | (out[:, compiled.STOPPED] != 0.0)
            | ~np.isfinite(t + last_step)
            | (out[:, compiled.MESSAGES] != 0.0)
            | ~(energy_error <= cfg.energy_error_limit)
            | ~advanced
            | (t >= cfg.horizon * (1.0 - 1e-12))
        )
        records.end_reason[rows] = None
        records.failed[rows] = False
        self.extras = {}
        ended = []
        for k in np.flatnonzero(unusual).tolist():
            i = int(rows[k])
            reason = self._end_reason(i, out[k], bool(advanced[k]))
            if reason is not None:
                records.end_reason[i] = reason
                records.failed[i] = reason in FAILURE_REASONS
                ended.append(i)
        for column, feature in enumerate(self.features.names):
            raw[rows, column] = BATCH_FEATURES[feature](records)[rows]
        return ended

    def reward(self, rows: np.ndarray) -> np.ndarray:
        """The reward of copies ``rows`` after :meth:`advance` (all copies' array)."""
        assert self.terms is not None
        total, self.parts = batch_reward(self.terms, self.records)
        bad = np.flatnonzero(~np.isfinite(total[rows]))
        for k in bad.tolist():  # the scalar reward names the non-finite term and raises
            i = int(rows[k])
            self.envs[i].reward_fn(self.records.transition(i))
        return total

    def _to_unit(self, settings: np.ndarray) -> np.ndarray:
        """``LogActionMap.to_unit`` over an array."""
        unit = 2.0 * (compiled.log10_each(settings) - self.log_low) / self.log_span - 1.0
        unit = np.where(unit > -1.0, unit, -1.0)
        return np.where(unit < 1.0, unit, 1.0)

    def _end_reason(self, i: int, out: np.ndarray, advanced: bool) -> str | None:
        """How copy ``i``'s decision ended, as the propagator and the env decide it (the
        REBOUND status and messages, the budget, the energy limit, a stall, the horizon);
        its extra info entries go to ``self.extras[i]``."""
        propagator = self.envs[i].propagator
        code = int(out[compiled.CODE])
        status, message = (None, "") if code == _DONE else propagator._end(code)
        if status is None and out[compiled.STOPPED]:
            status, message = propagator._end(-1)  # step_rules.BUDGET
        if status is None and not math.isfinite(out[compiled.T] + out[compiled.DT_LAST]):
            status, message = "stalled", "the clock or step became non-finite"
        notes: tuple[str, ...] = ()
        if out[compiled.MESSAGES]:
            notes, errors = propagator._messages()
            if errors and status is None:
                status, message = "stalled", "REBOUND error: " + "; ".join(errors)
        energy_error = float(self.records.energy_error[i])
        t = float(out[compiled.T])
        reason = status
        if status != "stalled" and energy_error > self.config.energy_error_limit:
            reason = "energy_error"
        elif status is None and not advanced:
            reason, message = "stalled", _NOT_ADVANCED
        elif status is None and t >= self.config.horizon * (1.0 - 1e-12):
            reason = "horizon"
        extras: dict[str, Any] = {"message": message} if message else {}
        if notes:
            extras["integrator_warnings"] = notes
        if extras:
            self.extras[i] = extras
        return reason

    # -- infos ---------------------------------------------------------------------------------
    def info(self, i: int) -> dict[str, Any]:
        """Copy ``i``'s info after the latest step, as its env's ``step_info`` builds it."""
        records = self.records
        info: dict[str, Any] = {
            "energy_error": float(records.energy_error[i]),
            "cost": float(self.evaluations[i]),
            "wall_time": float(self.wall_time[i]),
            "t": float(records.t[i]),
            "setting": float(records.setting[i]),
            "dt": float(records.last_step[i]),
            "steps": int(self.steps[i]),
            "integrator": self.config.integrator,
            "decision": int(records.decision[i]),
            "instance": self.instance[i],
            "cost_weight": float(records.cost_weight[i]),
            "t_dyn": float(records.t_dyn[i]),
        }
        if not self.config.wall_time_in_info:
            del info["wall_time"]
        info.update(self.extras.get(i, {}))
        info["reward_terms"] = {name: float(value[i]) for name, value in self.parts.items()}
        info["termination_reason"] = records.end_reason[i]
        return info

    def batched_info(self) -> dict[str, Any] | None:
        """The latest step's infos of all copies in Gymnasium's vector format (what
        ``batch_infos`` makes of :meth:`info` of every copy), or None when some copy has extra
        entries or a non-integer instance (then build it from the per-copy dicts)."""
        if self.extras or any(type(k) is not int for k in self.instance):
            return None
        n, records = self.n, self.records
        columns: dict[str, Any] = {
            "energy_error": records.energy_error,
            "cost": self.evaluations,
            "wall_time": self.wall_time,
            "t": records.t,
            "setting": records.setting,
            "dt": records.last_step,
            "steps": self.steps,
            "integrator": np.full(n, self.config.integrator, dtype=object),
            "decision": records.decision,
            "instance": np.array(self.instance, dtype=np.int64),
            "cost_weight": records.cost_weight,
            "t_dyn": records.t_dyn,
        }
        if not self.config.wall_time_in_info:
            del columns["wall_time"]
        mask = np.ones(n, dtype=np.bool_)
        out: dict[str, Any] = {}
        for key, column in columns.items():
            out[key], out[f"_{key}"] = column.copy(), mask.copy()
        terms: dict[str, Any] = {}
        for name, value in self.parts.items():
            terms[name], terms[f"_{name}"] = value.copy(), mask.copy()
        out["reward_terms"], out["_reward_terms"] = terms, mask.copy()
        reasons = np.empty(n, dtype=object)
        reasons[:] = records.end_reason
        out["termination_reason"], out["_termination_reason"] = reasons, mask
        return out


__all__ = ["ThreeBodyBatchStep"]
