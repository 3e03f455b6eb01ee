"""All copies of a ThreeBody-v0 vector env decided in one compiled call, scored in NumPy.

:class:`ThreeBodyBatchStep` is what :class:`~stepgym.envs.vector.StepSizeVectorEnv` uses for
``stepgym/ThreeBody-v0`` when the configuration allows it (:meth:`ThreeBodyBatchStep.build`
says why not otherwise, and the vector env then steps copy by copy). One decision of every
copy is:

1. the actions decoded at once (in C, as ``LogActionMap.decode``);
2. one call of :class:`~stepgym.integrators.batch.RuleBatch`: each copy's compiled rule
   advance (``step_rules.c``, the single env's own loop) -- or, in raw slice mode of an
   adaptive scheme (IAS15, BS), its ``sim.integrate`` to the slice's end with the scheme's
   own steps, as ``ReboundPropagator.advance_raw_to`` (``exact_slice_end`` as configured) --
   then its record
   (:class:`~stepgym.threebody.records.ThreeBodyBatch`: time, last step, energy error and
   its log, t_dyn, smallest separation, last action, progress, work) written in C into
   arrays the records use in place;
3. the features (:data:`~stepgym.threebody.features.BATCH_FEATURES`) and the reward
   (:mod:`~stepgym.threebody.batch_rewards`) over all copies in NumPy;
4. Python per copy only where something is unusual: an undecodable action (that copy steps
   through its own ``transition``), REBOUND messages, a budget stop, a non-finite state or an
   episode end (decided by the env's own ``decision_end``).

Every piece does the single environment's float operations in the same order (logs and
powers through libm, as Python's ``math``), so observations, rewards and infos are the same
bits as N single environments' (``tests/test_vector_env_batch.py``).

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
from stepgym.integrators.native import function_address
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
from stepgym.threebody.compiled_decision import row_end, unsupported
from stepgym.threebody.features import BATCH_FEATURES
from stepgym.threebody.records import ERROR_FLOOR, ThreeBodyBatch

logger = logging.getLogger(__name__)


def _unsupported(envs: list[Any]) -> str | None:
    """Why these copies cannot be stepped in one batch (None: they can)."""
    from stepgym.envs.three_body import ThreeBodyEnv

    first = envs[0]
    cfg = first.config
    if any(type(env) is not ThreeBodyEnv or env.config != cfg for env in envs):
        return "the copies are not ThreeBodyEnv of one configuration"
    if any(env.render_mode is not None for env in envs):
        return "rendering records every step"
    if cfg.step_mode == "residual" or cfg.phase_error:
        return f"step_mode={cfg.step_mode!r} / phase_error={cfg.phase_error}"
    reason = unsupported(cfg, first.propagator)  # what the single env's compiled call needs
    if reason is not None:
        return reason
    if any(name not in BATCH_FEATURES for name in first.features.names):
        return "a feature has no batched twin"
    if batch_terms(first.reward_fn) is None:
        return "a reward term has no batched twin"
    missing = [key for key in info_keys(first) if not _has_column(key)]
    if missing:
        return f"info entries {missing} have no batched column"
    return None


_RECORD_ROWS = {
    "t": compiled.T,
    "energy_error": compiled.ERROR,
    "log_energy_error": compiled.LOG_ERROR,
    "delta_log_energy_error": compiled.DELTA,
    "t_dyn": compiled.T_DYN,
    "min_separation": compiled.MIN_SEP,
    "last_step": compiled.DT_LAST,
    "progress": compiled.PROGRESS,
    "last_action": compiled.LAST_ACTION,
    "log_error_before": compiled.LOG_BEFORE,
    "evaluations": compiled.EVALS,
    "total_evaluations": compiled.COST,
}
"""ThreeBodyBatch fields that are rows of the batch's output (the C loop writes them)."""
_FEATURE_ROWS = {
    "log_timescale": compiled.LOG_T_DYN,
    "log_min_separation": compiled.LOG_MIN_SEP,
    "log_step_over_timescale": compiled.LOG_STEP,
}
"""Features the C loop computes itself (the BATCH_FEATURES twin's values), by output row."""
_COUNTERS = ("cost", "steps", "wall_time", "instance")
"""Info entries kept as counters of :class:`ThreeBodyBatchStep` under the same name."""
_RECORD_NAMES = {"dt": "last_step"}
"""Info entries read from a ThreeBodyBatch field of another name (the rest: same name)."""


def info_keys(env: Any) -> tuple[str, ...]:
    """The entries of ``env``'s info before the step's own (``ThreeBodyEnv._info``), in order."""
    return tuple(env._info(env._state_record))


def _has_column(key: str) -> bool:
    """Whether the batch keeps the info entry ``key`` (see ``ThreeBodyBatchStep._column``)."""
    record_field = _RECORD_NAMES.get(key, key)
    return key == "integrator" or key in _COUNTERS or hasattr(ThreeBodyBatch(1), record_field)


class ThreeBodyBatchStep:
    """One decision of every ThreeBody-v0 copy per call; see the module docstring."""

    def __init__(self, envs: list[Any]) -> None:
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
        self.raw = cfg.step_mode == "raw"
        rule = STEP_RULES.get(cfg.rule or "timescale").c_function
        self.scale = 0 if self.raw else function_address(self.batch.library, rule)
        budget = first.propagator.budget
        self.batch.set_limits(
            (budget.max_evaluations, budget.max_wall_time),
            ERROR_FLOOR,
            cfg.energy_error_limit,
            cfg.horizon,
            (self.action_map.low, self.action_map.high),
        )
        fine = cfg.decision == "fine"
        requests = self.batch.requests
        requests[:, FINE] = 1.0 if fine else 0.0
        requests[:, T_END] = math.inf
        requests[:, N_STEPS] = cfg.steps_per_decision if fine else 0
        requests[:, RETIME_EVERY] = 1 if fine else cfg.retime_every
        requests[:, PER_STEP] = scheme.evaluations_per_step or 0.0
        self.fine = fine
        self.setting_range = (self.action_map.low, self.action_map.high)
        self.grid = np.array(self.action_map.values.tolist())
        out = self.batch.out  # the records live in its rows: the C loop writes them in place
        self.records = ThreeBodyBatch(n, {field: out[row] for field, row in _RECORD_ROWS.items()})
        self.columns = range(len(self.features.names))
        self.batch_features = tuple(  # a feature the C loop computed: its output row
            out[_FEATURE_ROWS[name]] if name in _FEATURE_ROWS else BATCH_FEATURES[name]
            for name in self.features.names
        )
        self.cost = out[compiled.COST]
        self.steps_total = out[compiled.STEPS_TOTAL]
        self.wall_time = out[compiled.WALL_TOTAL]
        self.instance: list[int | None] = [None] * n
        self._integrators = np.array([cfg.integrator] * n, dtype=object)
        self.info_keys = info_keys(first)
        # (info key, what its batched column copies: records and counters change in place)
        self._info_sources = tuple((key, self._column(key)) for key in self.info_keys)
        self.addresses = np.zeros(n, dtype=np.uint64)
        self.applied = np.full(n, math.nan)
        """The raw setting last applied to each copy's scheme (NaN: none since its reset)."""
        self.extras: dict[int, dict[str, Any]] = {}
        """Per-copy info entries beyond the usual ones in the latest step (message, warnings)."""
        self.parts: dict[str, np.ndarray] = {}
        """The latest step's weighted reward terms."""

    @property
    def steps(self) -> np.ndarray:
        """Integrator steps since reset, per copy (integers, as the info reports them)."""
        return self.steps_total.astype(np.int64)

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
        self.batch.energy0[i] = env.propagator.initial_energy  # the energy at reset
        records.decision[i] = env._decision
        self.cost[i] = env._evaluations
        self.steps_total[i] = env._steps
        self.wall_time[i] = env._wall_time
        records.setting[i] = env._setting
        self.instance[i] = env._instance
        records.store(i, env._state_record)
        records.set_end(i, env._end_reason)
        self.applied[i] = math.nan  # a new simulation: its raw setting is applied afresh
        self.addresses[i] = env.propagator.address
        self.batch.caps[i] = env.propagator.scheme.step_cap_address()

    def detach(self, copies: list[int]) -> None:
        """Write the counters, records and latest infos of ``copies`` back into their envs."""
        records = self.records
        for i, info in zip(copies, self.infos(copies), strict=True):
            env = self.envs[i]
            reason = records.end_reason[i]
            env._decision = int(records.decision[i])
            env._evaluations = float(self.cost[i])
            env._steps = int(self.steps_total[i])
            env._wall_time = float(self.wall_time[i])
            env._setting = float(records.setting[i])
            env._done = reason is not None
            env._end_reason = reason
            records.restore(i, env._state_record)
            env.last_info = info

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
        value = arr[:, 0]
        return compiled.from_unit_each(value, self.setting_range), np.isfinite(value)

    def advance(self, rows: np.ndarray, settings: np.ndarray, raw: np.ndarray) -> list[int]:
        """Advance copies ``rows`` (indices) with their decoded ``settings`` (all copies' array),
        write their raw feature rows into ``raw`` and their records; return the copies whose
        episode ended (their ``records.end_reason``)."""
        cfg, records, batch = self.config, self.records, self.batch
        # every copy (the usual case): slices, which NumPy serves as views
        sel: slice | np.ndarray = slice(None) if len(rows) == self.n else rows
        records.decision[sel] += 1
        records.setting[sel] = settings[sel]
        if sel is rows:
            batch.sims[:] = 0
        batch.sims[sel] = self.addresses[sel]
        if not self.fine:  # the slice's end: min(decision * slice_time, horizon)
            t_end = records.decision[sel] * cfg.slice_time
            t_end = np.where(cfg.horizon < t_end, cfg.horizon, t_end)
        # the records of rows are written in place by the C loop
        if self.raw:  # the scheme's own steps with its raw setting (IAS15, BS)
            # applied where it changed: re-applying an unchanged setting is a no-op in raw mode
            changed = (settings[sel] != self.applied[sel]).nonzero()[0]
            for i in (rows[changed] if sel is rows else changed).tolist():
                propagator = self.envs[i].propagator
                propagator.scheme.apply_raw(propagator.sim, float(settings[i]))
            self.applied[sel] = settings[sel]
            batch.values[sel] = settings[sel]
            batch.t_ends[sel] = t_end
            batch.integrate(cfg.exact_slice_end)
        else:
            batch.requests[sel, VALUE] = settings[sel]
            if not self.fine:
                batch.requests[sel, T_END] = t_end
            if self.enter_step_mode:  # IAS15 / BS: their step mode, as the propagator sets it
                for i in rows.tolist():
                    propagator = self.envs[i].propagator
                    propagator.scheme.enter_step_mode(propagator.sim)
            batch.run(self.scale)
        if np.count_nonzero(records.ended[sel]):  # (a copy steps again only after its reset)
            records.end_reason[sel], records.failed[sel], records.ended[sel] = None, False, False
        self.extras = {}
        ended = []
        for k in batch.out[compiled.UNUSUAL, sel].nonzero()[0].tolist():
            i = int(rows[k])
            reason = self._end_reason(i, batch.out[:, i])
            if reason is not None:
                records.set_end(i, reason)
                ended.append(i)
        columns = raw.T if sel is not rows else None  # every copy: write whole columns
        for column, feature in zip(self.columns, self.batch_features, strict=True):
            values = feature if type(feature) is np.ndarray else feature(records)
            if columns is not None:
                columns[column] = values
            else:
                raw[rows, column] = values[rows]
        return ended

    def reward(self, rows: np.ndarray) -> np.ndarray:
        """The reward of copies ``rows`` after :meth:`advance` (all copies' array)."""
        assert self.terms is not None
        total, self.parts = batch_reward(self.terms, self.records)
        if np.count_nonzero(finite := np.isfinite(total)) < self.n:  # (rare; others: stale)
            for i in rows[~finite[rows]].tolist():  # the scalar reward names the term, raises
                self.envs[i].reward_fn(self.records.transition(i))
        return total

    def _end_reason(self, i: int, out: np.ndarray) -> str | None:
        """How copy ``i``'s decision ended, as the propagator and the env decide it
        (:func:`~stepgym.threebody.compiled_decision.row_end`); its extra info entries go to
        ``self.extras[i]``."""
        cfg = self.config
        reason, message, notes = row_end(
            self.envs[i].propagator,
            out,
            float(self.records.energy_error[i]),
            cfg.energy_error_limit,
            cfg.horizon * (1.0 - 1e-12),
        )
        extras: dict[str, Any] = {"message": message} if message else {}
        if notes:
            extras["integrator_warnings"] = notes
        if extras:
            self.extras[i] = extras
        return reason

    # -- infos ---------------------------------------------------------------------------------
    def _columns(self) -> dict[str, Any]:
        """The info entries every copy reports, in its env's order (``info_keys``), over all
        copies: arrays, or lists for the integrator and the instance."""
        return {key: self._column(key) for key in self.info_keys}

    def _column(self, key: str) -> Any:
        """All copies' values of the info entry ``key``: a counter of this class (``cost``,
        ``steps``, ``wall_time``, ``instance``), the integrator, or a record field."""
        if key == "integrator":
            return [self.config.integrator] * self.n
        if key in _COUNTERS:
            return getattr(self, key)
        return getattr(self.records, _RECORD_NAMES.get(key, key))

    def infos(self, copies: list[int]) -> list[dict[str, Any]]:
        """The infos of ``copies`` after the latest step, as their envs' ``step_info`` builds
        them (Python scalars)."""
        columns = self._columns()
        keys = tuple(columns)
        # one zip over whole columns: the per-copy dicts cost ~1 us each (strict=False: the
        # columns have one entry per copy by construction)
        listed = (c.tolist() if type(c) is np.ndarray else c for c in columns.values())
        rows = list(zip(*listed, strict=False))
        names = tuple(self.parts)
        terms = list(zip(*(value.tolist() for value in self.parts.values()), strict=False))
        reasons = self.records.end_reason
        out = []
        for i in copies:
            info = dict(zip(keys, rows[i], strict=False))
            if i in self.extras:
                info.update(self.extras[i])
            info["reward_terms"] = dict(zip(names, terms[i], strict=False))
            info["termination_reason"] = reasons[i]
            out.append(info)
        return out

    def batched_info(self) -> dict[str, Any] | None:
        """The latest step's infos of all copies in Gymnasium's vector format (what
        ``batch_infos`` makes of :meth:`info` of every copy), or None when some copy has extra
        entries or a non-integer instance (then build it from the per-copy dicts)."""
        if self.extras or None in self.instance:
            return None  # below: every mask is all True, each a row of one block
        masks = iter(np.ones((len(self.info_keys) + 2 + len(self.parts), self.n), np.bool_))
        terms: dict[str, Any] = {}
        for name, value in self.parts.items():
            terms[name], terms[f"_{name}"] = value.copy(), next(masks)
        out: dict[str, Any] = {}
        for key, source in self._info_sources:  # the env's order (reward_terms and the
            if key == "integrator":  # reason follow); the lists as batch_infos types them
                column: Any = self._integrators.copy()
            elif key == "instance":
                column = np.array(self.instance, dtype=np.int64)
            elif key == "steps":
                column = self.steps  # a new array already
            else:
                column = source.copy()
            out[key], out[f"_{key}"] = column, next(masks)
        out["reward_terms"], out["_reward_terms"] = terms, next(masks)
        reasons = self.records.end_reason.copy()
        out["termination_reason"], out["_termination_reason"] = reasons, next(masks)
        return out


__all__ = ["ThreeBodyBatchStep"]
