"""The template every stepgym environment follows.

``step()`` holds no physics and no training code: it decodes the action, asks the subclass
to advance its process with the decoded setting, computes the observation from the feature
set and the reward from the weighted reward terms, and reports why the episode ended.

A subclass implements four hooks:

- ``_reset_process(options)`` -> the state snapshot after reset (seeded by ``self.np_random``);
- ``_advance(setting)`` -> :class:`Advance` (the new state snapshot, the transition record the
  reward reads, and the reason the episode ends, if it does);
- ``_info(state)`` -> the per-step metrics;
- ``_failure_transition(reason)`` -> the transition record for an action that could not be
  decoded (the process is not advanced).

and declares its end reasons as the class attribute ``end_reasons``
(:class:`~stepgym.episodes.EndReasons`): a reason in ``end_reasons.truncation`` truncates the
episode, any other terminates it. The module that defines the env declares the same object in
its ``ENV_SPEC`` (:mod:`stepgym.envs.spec`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

import gymnasium as gym
import numpy as np

from stepgym.actions import InvalidActionError, LogActionMap
from stepgym.deprecation import deprecated_names
from stepgym.episodes import INVALID_ACTION, EndReasons
from stepgym.errors import ConfigError, StepGymError
from stepgym.features import FeatureSet
from stepgym.rewards import WeightedReward

logger = logging.getLogger(__name__)

S = TypeVar("S")  # state snapshot the features read
T = TypeVar("T")  # transition record the reward terms read

DEFAULT_END_REASONS = EndReasons(
    terminal=frozenset(), truncation=frozenset({"horizon", "step_budget"})
)
"""End reasons of a subclass that declares none: "horizon" and "step_budget" truncate."""


__getattr__ = deprecated_names(
    __name__,
    {
        "TRUNCATION_REASONS": (
            "stepgym.envs.base.TRUNCATION_REASONS is deprecated: each environment declares its "
            "own; read env.unwrapped.end_reasons.truncation.",
            lambda: DEFAULT_END_REASONS.truncation,
        )
    },
)


class ResetNeeded(StepGymError, RuntimeError):
    """step() was called before reset() or after the episode ended."""


class Advance(NamedTuple, Generic[S, T]):
    """What a subclass's ``_advance`` returns (immutable; a named tuple rather than a frozen
    dataclass because one is built per decision and costs half as much)."""

    state: S
    """State snapshot after the advance (read by the features)."""
    transition: T
    """Transition record (read by the reward terms)."""
    end_reason: str | None = None
    """Why the episode ends now, or None if it goes on. Reasons in the env's
    ``end_reasons.truncation`` truncate; the others terminate."""
    info: Mapping[str, Any] | None = None
    """Extra per-step entries merged into ``info`` (e.g. an error message)."""


RENDER_METADATA: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 4}
"""``metadata`` of an environment that implements the rendering hooks."""


class StepSizeEnv(gym.Env[np.ndarray, Any], Generic[S, T]):
    """Base class: action map + process + feature set + weighted reward.

    Rendering (``render_mode="rgb_array"``, for subclasses whose ``metadata`` lists it): the
    base keeps one ``_trace_point`` per reset/step while rendering is on, and ``render()``
    hands the episode's trace to ``_render_frame``.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - Gymnasium convention
    render_mode: str | None = None
    end_reasons: ClassVar[EndReasons] = DEFAULT_END_REASONS
    """Why this environment's episodes end; the truncations decide ``truncated``."""

    def __init__(
        self, action_map: LogActionMap, features: FeatureSet[S], reward: WeightedReward[T]
    ) -> None:
        self.action_map = action_map
        self.features = features
        self.reward_fn = reward
        self.action_space = action_map.space
        self.observation_space = features.space
        self._state: S | None = None
        self._done = True
        self._end_reason: str | None = None
        self.last_info: dict[str, Any] = {}
        """The info dict of the latest reset/step (baseline controllers read it)."""

    # -- hooks --------------------------------------------------------------------------------
    def _reset_process(self, options: Mapping[str, Any]) -> S:
        raise NotImplementedError

    def _advance(self, setting: float) -> Advance[S, T]:
        raise NotImplementedError

    def _info(self, state: S) -> dict[str, Any]:
        raise NotImplementedError

    def _failure_transition(self, reason: str) -> T:
        raise NotImplementedError

    def _trace_point(self, state: S, info: Mapping[str, Any]) -> Any:
        """What ``render()`` needs of this reset/step (recorded only while rendering)."""
        return dict(info)

    def _render_frame(self, trace: list[Any]) -> np.ndarray:
        """An (H, W, 3) uint8 picture of the episode so far, from its trace points."""
        raise NotImplementedError

    def _close_process(self) -> None:
        """Release what the process holds (a simulation, a training run); optional."""

    # -- rendering ----------------------------------------------------------------------------
    def _set_render_mode(self, render_mode: str | None) -> None:
        """Accept ``render_mode`` if ``metadata`` lists it (None: no rendering)."""
        modes = list(self.metadata.get("render_modes", []))
        if render_mode is not None and render_mode not in modes:
            name = type(self).__name__
            raise ConfigError(
                f"{name} cannot render with render_mode={render_mode!r}; use "
                + (f"render_mode={modes[0]!r} or None." if modes else "render_mode=None.")
            )
        self.render_mode = render_mode

    def _record(self, state: S, info: Mapping[str, Any], *, first: bool = False) -> None:
        if self.render_mode is None:
            return
        if first:
            self._trace = []
        self._trace.append(self._trace_point(state, info))

    def render(self) -> np.ndarray | None:
        """The episode so far as an (H, W, 3) uint8 array (``render_mode="rgb_array"``)."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array'.")
            return None
        trace = getattr(self, "_trace", None)
        if not trace:
            raise ResetNeeded("render() called before reset(); call reset() first.")
        return self._render_frame(trace)

    # -- Gymnasium API ------------------------------------------------------------------------
    def close(self) -> None:
        """Release the process; step() then asks for reset() instead of reading freed state."""
        self._close_process()
        self._state = None
        super().close()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._state = self._reset_process(options or {})
        self._done = False
        self._end_reason = None
        info = self._info(self._state)
        info["termination_reason"] = None
        self.last_info = info
        self._record(self._state, info, first=True)
        return self.features(self._state), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        # transition() written out for a decodable action on a running episode (it runs once
        # per decision; the same values: tests/test_env_step_paths.py); the info is
        # step_info()'s. An action that does not decode, or a step that must not happen,
        # takes transition() itself.
        if self._done or self._state is None:
            return self._step_through_parts(action)
        try:
            setting = self.action_map.decode(action)
        except InvalidActionError:
            return self._step_through_parts(action)
        advance = self._advance(setting)
        state, transition, reason, _ = advance
        self._state = state
        reward, terms = self.reward_fn.score(transition)  # (score: __call__ without its dispatch)
        info = self.step_info(advance, terms)
        if reason is None:  # _done and _end_reason stay False and None until the episode ends
            return self.features.observe(state), reward, False, False, info
        self._done = True
        self._end_reason = reason
        truncated = reason in self.end_reasons.truncation
        return self.features.observe(state), reward, not truncated, truncated, info

    def _step_through_parts(
        self, action: Any
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """``step()`` as :meth:`transition` and :meth:`step_info` (what the vector envs call)."""
        advance, reward, terms = self.transition(action)
        info = self.step_info(advance, terms)
        reason = advance.end_reason
        if reason is None:
            return self.features(advance.state), reward, False, False, info
        truncated = reason in self.end_reasons.truncation
        return self.features(advance.state), reward, not truncated, truncated, info

    def transition(self, action: Any) -> tuple[Advance[S, T], float, dict[str, float]]:
        """Decode ``action``, advance the process and score it: (advance, reward, reward terms).

        The part of ``step()`` that vector environments share; the observation and the info
        are left to the caller (``self.features(advance.state)``, :meth:`step_info`).
        """
        if self._state is None or self._done:
            raise ResetNeeded(
                "step() called on an environment whose episode "
                + ("has not started" if self._state is None else f"ended ({self._end_reason})")
                + "; call reset() first."
            )
        try:
            setting = self.action_map.decode(action)
        except InvalidActionError as error:
            logger.warning("invalid action ends the episode: %s", error)
            advance: Advance[S, T] = Advance(
                self._state,
                self._failure_transition(INVALID_ACTION),
                INVALID_ACTION,
                {"error": str(error)},
            )
        else:
            advance = self._advance(setting)
        state, transition, reason, _ = advance
        self._state = state
        reward, terms = self.reward_fn.score(transition)
        self._done = reason is not None
        self._end_reason = reason
        return advance, reward, terms

    def step_info(self, advance: Advance[S, T], terms: dict[str, float]) -> dict[str, Any]:
        """The info of the step that produced ``advance``; also kept as ``last_info``."""
        state, _, reason, extra = advance
        info = self._info(state)
        if extra:
            info.update(extra)
        info["reward_terms"] = terms
        info["termination_reason"] = reason
        self.last_info = info
        if self.render_mode is not None:
            self._record(state, info)
        return info
