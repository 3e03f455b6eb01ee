"""Native vector environments: N copies of a step-size environment advanced in one call.

``gymnasium.make_vec("stepgym/ThreeBody-v0", num_envs=N, **kwargs)`` returns a
:class:`StepSizeVectorEnv` (it is the id's ``vector_entry_point``, which ``make_vec`` prefers
when no ``vectorization_mode`` is given). It runs the N simulations in this process, with no
subprocesses, no wrappers and no per-step copies:

- each copy is the single environment itself, so physics, features, reward and end reasons
  have one source (:meth:`StepSizeEnv.transition` and :meth:`StepSizeEnv.step_info`);
- where the configuration allows it a :class:`BatchStep` decides all copies in one call
  (ThreeBody-v0: one compiled call advances every simulation, features and reward are
  computed over the batch; :mod:`stepgym.envs.vector_three_body`), with the same
  observations, rewards and infos bit for bit; the copies' own records are written back
  whenever someone reads ``envs``; ``batched`` says which path runs. Otherwise the copies
  step one after the other;
- the observation batch is written row by row into one float64 array and made float32, finite
  and bounded by one :meth:`FeatureSet.sanitize` over the batch;
- infos are Gymnasium's vector format: a dict of arrays, each key ``k`` with a boolean mask
  ``_k`` saying which copies reported it.

Autoreset follows ``metadata["autoreset_mode"]``: ``"NextStep"`` (Gymnasium's default: the
step after an episode ends resets that copy and returns its first observation with reward 0)
or ``"SameStep"`` (the copy resets in the step that ends it; ``info["final_obs"]`` and
``info["final_info"]`` hold the episode's last observation and info), chosen with
``make_vec(..., autoreset_mode="SameStep")``. With ``reset(seed=s)`` copy i is seeded with
``s + i``, so the N copies play exactly the episodes of N single environments seeded so.
``max_episode_steps`` truncates episodes as Gymnasium's ``TimeLimit`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from stepgym.envs.base import StepSizeEnv
from stepgym.envs.vector_infos import InfoList, batch_infos
from stepgym.errors import ConfigError


class BatchStep(Protocol):
    """Decides all copies of a vector env in one call (e.g.
    :class:`~stepgym.envs.vector_three_body.ThreeBodyBatchStep`); the vector env keeps the
    autoreset, time limits and info format, and steps a copy by itself where the batch
    cannot decode its action."""

    def attach(self, i: int) -> None:
        """Read copy ``i``'s state from its env (after a reset or a step of its own)."""

    def detach(self, copies: list[int]) -> None:
        """Write the state and latest info of ``copies`` back into their envs."""

    def decode(self, actions: Any) -> tuple[np.ndarray, np.ndarray] | None:
        """(settings, decodable mask) of all copies, or None to decode copy by copy."""

    def advance(self, rows: np.ndarray, settings: np.ndarray, raw: np.ndarray) -> list[int]:
        """Decide copies ``rows``, writing their raw observation rows; the copies that ended."""

    def reward(self, rows: np.ndarray) -> np.ndarray:
        """Rewards of the latest :meth:`advance` (an array over all copies)."""

    def end_reason(self, i: int) -> str | None:
        """Why copy ``i``'s episode ended in the latest advance (None: it goes on)."""

    def infos(self, copies: list[int]) -> list[dict[str, Any]]:
        """The infos of ``copies`` in the latest advance."""

    def batched_info(self) -> dict[str, Any] | None:
        """All copies' infos of the latest advance in vector format, or None (per copy)."""


def parse_autoreset_mode(value: AutoresetMode | str) -> AutoresetMode:
    """``value`` as an :class:`AutoresetMode` (its name or value string is accepted)."""
    if isinstance(value, AutoresetMode):
        mode = value
    else:
        by_text = {m.value.lower(): m for m in AutoresetMode} | {
            m.name.lower(): m for m in AutoresetMode
        }
        if str(value).lower() not in by_text:
            raise ConfigError(
                f"autoreset_mode {value!r} is not one of "
                f"{', '.join(repr(m.value) for m in AutoresetMode)}."
            )
        mode = by_text[str(value).lower()]
    if mode is AutoresetMode.DISABLED:
        raise ConfigError(
            "autoreset_mode 'Disabled' is not supported by stepgym's vector environments; "
            "use 'NextStep' or 'SameStep'."
        )
    return mode


class StepSizeVectorEnv(VectorEnv[np.ndarray, np.ndarray, np.ndarray]):
    """N step-size environments of one configuration, stepped in sequence in this process.

    Args:
        envs: the copies (unwrapped, built with the same arguments).
        autoreset_mode: ``"NextStep"`` (default) or ``"SameStep"``.
        max_episode_steps: truncate episodes after this many steps (None: never).
        batch: builds the step that decides all copies in one call from the copies (returns
            None when their configuration needs the copy-by-copy path); None: copy by copy.
    """

    def __init__(
        self,
        envs: Sequence[StepSizeEnv[Any, Any]],
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        max_episode_steps: int | None = None,
        batch: Callable[[list[Any]], BatchStep | None] | None = None,
    ) -> None:
        if not envs:
            raise ConfigError("a vector environment needs num_envs >= 1.")
        if max_episode_steps is not None and max_episode_steps < 1:
            raise ConfigError(f"max_episode_steps must be >= 1 or None, got {max_episode_steps}.")
        self._copies = list(envs)
        self.num_envs = len(self._copies)
        first = self._copies[0]
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = batch_space(first.observation_space, self.num_envs)
        self.action_space = batch_space(first.action_space, self.num_envs)
        self.mode = parse_autoreset_mode(autoreset_mode)
        self.metadata = {"render_modes": [], "autoreset_mode": self.mode}
        self.render_mode = None  # the copies render one by one: ``call("render")``
        self.max_episode_steps = max_episode_steps
        self._features = first.features  # every copy has the same feature set
        self._raw = np.zeros((self.num_envs, first.features.space.shape[0]), dtype=np.float64)
        self._rewards = np.zeros(self.num_envs, dtype=np.float64)
        self._terminated = np.zeros(self.num_envs, dtype=np.bool_)
        self._truncated = np.zeros(self.num_envs, dtype=np.bool_)
        self._needs_reset = np.zeros(self.num_envs, dtype=np.bool_)
        self._elapsed = np.zeros(self.num_envs, dtype=np.int64)
        self._batch = batch(self._copies) if batch is not None else None
        self._stale = np.zeros(self.num_envs, dtype=np.bool_)
        """Copies whose env object lags the batch's arrays (written back on access)."""

    @property
    def envs(self) -> list[StepSizeEnv[Any, Any]]:
        """The copies, each up to date (the batched path writes their records back first)."""
        if np.count_nonzero(self._stale) and self._batch is not None:
            self._batch.detach(self._stale.nonzero()[0].tolist())
            self._stale[:] = False
        return self._copies

    @property
    def batched(self) -> bool:
        """True if steps decide all copies in one call (else copy by copy)."""
        return self._batch is not None

    def _sync(self, i: int) -> None:
        if self._stale[i] and self._batch is not None:
            self._batch.detach([i])
            self._stale[i] = False

    # -- Gymnasium VectorEnv API ---------------------------------------------------------------
    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every copy; an int ``seed`` seeds copy i with ``seed + i``."""
        infos = self.reset_each(seed=seed, options=options)
        return self.observations(), batch_infos(infos, self.num_envs)

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        observations, rewards, terminated, truncated, infos, finals = self._step(actions)
        vector_info = infos if isinstance(infos, dict) else batch_infos(infos, self.num_envs)
        if finals:
            final_obs = np.full(self.num_envs, None, dtype=object)
            final_infos: InfoList = [{} for _ in range(self.num_envs)]
            for i, (obs, info) in finals.items():
                final_obs[i] = obs
                final_infos[i] = info
            mask = np.zeros(self.num_envs, dtype=np.bool_)
            mask[list(finals)] = True
            vector_info["final_obs"], vector_info["_final_obs"] = final_obs, mask
            vector_info["final_info"] = batch_infos(final_infos, self.num_envs)
            vector_info["_final_info"] = mask.copy()
        return observations, rewards, terminated, truncated, vector_info

    def close_extras(self, **kwargs: Any) -> None:
        for env in self._copies:
            env.close()

    # -- per-copy results (what the SB3 adapter reads) -------------------------------------------
    def reset_each(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> InfoList:
        """Reset every copy (seeded as :meth:`reset` says); return their infos.

        :meth:`observations` gives the batch of first observations.
        """
        if seed is None or isinstance(seed, int | np.integer):
            seeds: list[int | None] = [
                None if seed is None else int(seed) + i for i in range(self.num_envs)
            ]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ConfigError(f"got {len(seeds)} seeds for {self.num_envs} environments.")
        infos = [self._reset_one(i, seeds[i], options) for i in range(self.num_envs)]
        self._needs_reset[:] = False
        return infos

    def step_each(
        self, actions: np.ndarray
    ) -> tuple[
        np.ndarray, np.ndarray, np.ndarray, np.ndarray, InfoList, dict[int, tuple[np.ndarray, Any]]
    ]:
        """Step every copy: (observations, rewards, terminated, truncated, per-copy infos,
        ``{i: (final observation, final info)}`` of the copies that SameStep-reset)."""
        observations, rewards, terminated, truncated, infos, finals = self._step(actions)
        if isinstance(infos, dict):
            infos = self._info_list({})
        return observations, rewards, terminated, truncated, infos, finals

    # -- one step of every copy --------------------------------------------------------------
    def _step(
        self, actions: np.ndarray
    ) -> tuple[
        np.ndarray,
        np.ndarray,
        np.ndarray,
        np.ndarray,
        InfoList | dict[str, Any],
        dict[int, tuple[np.ndarray, Any]],
    ]:
        """The step shared by :meth:`step` and :meth:`step_each`; infos come as per-copy dicts,
        or already batched when the batched path could build them at once."""
        rewards, terminated, truncated = self._rewards, self._terminated, self._truncated
        own_infos: dict[int, Any] = {}  # copies with an info dict of their own this step
        resetting = np.count_nonzero(self._needs_reset) > 0  # (.any() costs 4x as much)
        stepping = ~self._needs_reset
        if resetting:
            for i in self._needs_reset.nonzero()[0].tolist():  # NextStep autoreset
                own_infos[i] = self._reset_one(i, None, None)
                rewards[i], terminated[i], truncated[i] = 0.0, False, False
            self._needs_reset[:] = False
        decided = self._decode(actions, stepping)
        alone = stepping if decided is None else stepping & ~decided[0]
        if np.count_nonzero(alone):
            for i in alone.nonzero()[0].tolist():
                own_infos[i] = self._step_copy(i, actions[i])
        if decided is not None and np.count_nonzero(decided[0]):
            self._step_rows(decided[0].nonzero()[0], decided[1])
        if resetting:
            self._elapsed[stepping] += 1
        else:
            self._elapsed += 1
        if self.max_episode_steps is not None:
            truncated |= stepping & (self._elapsed >= self.max_episode_steps)
        done = terminated | truncated  # only stepping copies can be done
        ending = done.nonzero()[0].tolist() if np.count_nonzero(done) else []
        infos: InfoList | dict[str, Any] | None = None
        if not own_infos and not ending and self._batch is not None:
            infos = self._batch.batched_info()
        if infos is None:
            infos = self._info_list(own_infos)
        observations = self.observations()
        finals: dict[int, tuple[np.ndarray, Any]] = {}
        if ending and self.mode is not AutoresetMode.SAME_STEP:
            self._needs_reset[ending] = True
        elif ending:
            assert isinstance(infos, list)  # built per copy on a step where copies end
            for i in ending:
                finals[i] = (observations[i].copy(), infos[i])
                infos[i] = self._reset_one(i, None, None)
                observations[i] = self._raw[i]
        return observations, rewards.copy(), terminated.copy(), truncated.copy(), infos, finals

    def _decode(
        self, actions: np.ndarray, stepping: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """(mask of the stepping copies the batch decides, decoded settings of all copies), or
        None without a batch or for a batch of actions it cannot decode at once."""
        decoded = self._batch.decode(actions) if self._batch is not None else None
        if decoded is None:
            return None
        settings, valid = decoded
        return stepping & valid, settings

    def _step_rows(self, rows: np.ndarray, settings: np.ndarray) -> None:
        """Decide copies ``rows`` in one batched call."""
        assert self._batch is not None
        batch = self._batch
        ended = batch.advance(rows, settings, self._raw)
        sel: slice | np.ndarray = slice(None) if len(rows) == self.num_envs else rows
        self._rewards[sel] = batch.reward(rows)[sel]
        self._stale[sel] = True
        self._terminated[sel] = False
        self._truncated[sel] = False
        truncations = self._copies[0].end_reasons.truncation
        for i in ended:
            truncates = batch.end_reason(i) in truncations
            self._terminated[i], self._truncated[i] = not truncates, truncates

    def _step_copy(self, i: int, action: Any) -> dict[str, Any]:
        """Step copy ``i`` by itself (no batch, or an action the batch cannot decode)."""
        self._sync(i)
        env = self._copies[i]
        advance, self._rewards[i], terms = env.transition(action)
        env.features.write(advance.state, self._raw[i])
        info: dict[str, Any] = env.step_info(advance, terms)
        reason = advance.end_reason
        truncations = env.end_reasons.truncation
        self._terminated[i] = reason is not None and reason not in truncations
        self._truncated[i] = reason in truncations
        if self._batch is not None:
            self._batch.attach(i)
        return info

    def _info_list(self, own_infos: dict[int, Any]) -> InfoList:
        """Every copy's info: its own dict, or the batch's for the copies it decided."""
        if len(own_infos) == self.num_envs:
            return [own_infos[i] for i in range(self.num_envs)]
        assert self._batch is not None
        decided = [i for i in range(self.num_envs) if i not in own_infos]
        built = dict(zip(decided, self._batch.infos(decided), strict=True))
        return [own_infos[i] if i in own_infos else built[i] for i in range(self.num_envs)]

    # -- helpers -----------------------------------------------------------------------------------
    def _reset_one(self, i: int, seed: int | None, options: dict[str, Any] | None) -> Any:
        self._stale[i] = False  # reset rewrites the copy's whole record
        observation, info = self._copies[i].reset(seed=seed, options=options)
        self._raw[i] = observation  # already sanitized; sanitizing again leaves it unchanged
        self._elapsed[i] = 0
        if self._batch is not None:
            self._batch.attach(i)
        return info

    def observations(self) -> np.ndarray:
        """The current observation batch (float32, finite, inside the declared bounds)."""
        return self._features.sanitize(self._raw)

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Call (or read) ``name`` on every copy."""
        results = []
        for env in self.envs:
            attribute = getattr(env, name)
            results.append(attribute(*args, **kwargs) if callable(attribute) else attribute)
        return tuple(results)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        return tuple(getattr(env, name) for env in self.envs)

    def set_attr(self, name: str, values: list[Any] | tuple[Any, ...] | Any) -> None:
        if not isinstance(values, list | tuple):
            values = [values] * self.num_envs
        if len(values) != self.num_envs:
            raise ConfigError(f"got {len(values)} values for {self.num_envs} environments.")
        for env, value in zip(self.envs, values, strict=True):
            setattr(env, name, value)


def vector_entry_point(
    env_cls: Callable[..., StepSizeEnv[Any, Any]],
    batch: Callable[[list[Any]], BatchStep | None] | None = None,
) -> Callable[..., StepSizeVectorEnv]:
    """A ``vector_entry_point`` for ``env_cls``: ``(num_envs, autoreset_mode, max_episode_steps,
    **env kwargs)`` -> :class:`StepSizeVectorEnv` of ``num_envs`` copies (decided together by
    ``batch(copies)`` where it returns a :class:`BatchStep`)."""

    def make(
        num_envs: int = 1,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        max_episode_steps: int | None = None,
        **kwargs: Any,
    ) -> StepSizeVectorEnv:
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ConfigError(f"num_envs must be an integer >= 1, got {num_envs!r}.")
        envs = [env_cls(**kwargs) for _ in range(num_envs)]
        return StepSizeVectorEnv(envs, autoreset_mode, max_episode_steps, batch)

    make.__doc__ = f"N copies of {env_cls.__name__} as one StepSizeVectorEnv."
    return make


def three_body_vector(num_envs: int = 1, **kwargs: Any) -> StepSizeVectorEnv:
    """``stepgym/ThreeBody-v0``'s vector entry point: N copies of ThreeBodyEnv in one process,
    decided in one compiled call where the configuration allows it
    (:class:`~stepgym.envs.vector_three_body.ThreeBodyBatchStep`)."""
    from stepgym.envs.three_body import ThreeBodyEnv
    from stepgym.envs.vector_three_body import ThreeBodyBatchStep

    return vector_entry_point(ThreeBodyEnv, ThreeBodyBatchStep.build)(num_envs, **kwargs)


__all__ = [
    "BatchStep",
    "StepSizeVectorEnv",
    "batch_infos",
    "parse_autoreset_mode",
    "three_body_vector",
    "vector_entry_point",
]
