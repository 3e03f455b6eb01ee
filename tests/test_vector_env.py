"""The native vector env plays the episodes of single envs, in Gymnasium's vector format,
and SB3 trains through its adapter as through DummyVecEnv."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

import stepgym  # noqa: F401 - registers the environments
from stepgym.agents.vec_adapter import NativeVecEnv
from stepgym.envs.vector import StepSizeVectorEnv, batch_infos
from stepgym.errors import ConfigError

ID = "stepgym/ThreeBody-v0"
# three decisions per episode (horizon 2.5 with slices of ~1.09), cheap steps
KWARGS: dict[str, Any] = {
    "integrator": "leapfrog",
    "step_mode": "timescale",
    "eta_range": (0.01, 0.3),
    "horizon": 2.5,
}
N = 3


def _actions(rng: np.random.Generator, n: int = N) -> np.ndarray:
    return rng.uniform(-1.0, 1.0, size=(n, 1)).astype(np.float32)


def test_make_vec_defaults_to_the_native_vector_env() -> None:
    envs = gym.make_vec(ID, num_envs=2, **KWARGS)
    assert isinstance(envs, StepSizeVectorEnv)
    assert envs.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
    observations, info = envs.reset(seed=0)
    assert observations.shape == (2, *envs.single_observation_space.shape)
    assert observations.dtype == np.float32 and envs.observation_space.contains(observations)
    assert info["_cost"].all() and info["cost"].shape == (2,)
    envs.close()


@pytest.mark.parametrize("mode", ["NextStep", "SameStep"])
@pytest.mark.parametrize("batched", [True, False])
def test_vector_plays_the_episodes_of_single_envs(mode: str, batched: bool) -> None:
    # the default features are decided for all copies at once; the seed paper's positions
    # and velocities copy by copy
    kwargs = KWARGS if batched else {**KWARGS, "features": "seed_paper"}
    vector = gym.make_vec(ID, num_envs=N, autoreset_mode=mode, **kwargs)
    assert isinstance(vector, StepSizeVectorEnv) and vector.batched is batched
    singles = [gym.make(ID, **kwargs) for _ in range(N)]
    observations, _ = vector.reset(seed=7)
    expected = [env.reset(seed=7 + i)[0] for i, env in enumerate(singles)]
    np.testing.assert_array_equal(observations, np.stack(expected))
    rng = np.random.default_rng(0)
    ended = np.zeros(N, dtype=bool)
    after_reset = np.zeros(N, dtype=bool)  # a copy's episode after its autoreset was played
    needs_reset = np.zeros(N, dtype=bool)
    for _ in range(9):
        actions = _actions(rng)
        observations, rewards, terminated, truncated, info = vector.step(actions)
        for i, env in enumerate(singles):
            if needs_reset[i]:  # NextStep: this step is the reset
                obs, single_info = env.reset()
                reward, term, trunc = 0.0, False, False
                needs_reset[i] = False
            else:
                obs, reward, term, trunc, single_info = env.step(actions[i])
                after_reset[i] |= ended[i]
            assert (rewards[i], terminated[i], truncated[i]) == (reward, term, trunc)
            if term or trunc:
                ended[i] = True
                if mode == "SameStep":
                    np.testing.assert_array_equal(info["final_obs"][i], obs)
                    assert info["final_info"]["cost"][i] == single_info["cost"]
                    obs, single_info = env.reset()
                else:
                    needs_reset[i] = True
            np.testing.assert_array_equal(observations[i], obs)
            for key in ("energy_error", "cost", "t", "steps", "setting", "termination_reason"):
                assert info[f"_{key}"][i] and info[key][i] == single_info[key], key
    assert after_reset.all(), "every copy must play into its second episode"
    vector.close()


def test_infos_have_the_format_of_gymnasiums_sync_vector_env() -> None:
    ours = gym.make_vec(ID, num_envs=N, autoreset_mode="SameStep", **KWARGS)
    sync = gym.make_vec(
        ID,
        num_envs=N,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        **KWARGS,
    )
    _assert_same_info(ours.reset(seed=3)[1], sync.reset(seed=3)[1])
    rng = np.random.default_rng(1)
    saw_final = False
    for _ in range(5):
        actions = _actions(rng)
        a, b = ours.step(actions), sync.step(actions)
        for x, y in zip(a[:4], b[:4], strict=True):
            np.testing.assert_array_equal(x, y)
        _assert_same_info(a[4], b[4])
        saw_final |= "final_info" in a[4]
    assert saw_final


def _assert_same_info(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    assert sorted(ours) == sorted(theirs)
    for key, value in theirs.items():
        if isinstance(value, dict):
            _assert_same_info(ours[key], value)
        elif key == "final_obs":
            for x, y in zip(ours[key], value, strict=True):
                np.testing.assert_array_equal(x, y)
        else:
            assert ours[key].dtype == value.dtype, key
            np.testing.assert_array_equal(ours[key], value)


def test_batch_infos_masks_missing_keys() -> None:
    out = batch_infos([{"a": 1.0, "m": "x"}, {"a": 2.0}, {"n": {"k": 3}}], 3)
    np.testing.assert_array_equal(out["a"], [1.0, 2.0, 0.0])
    np.testing.assert_array_equal(out["_a"], [True, True, False])
    assert list(out["m"]) == ["x", None, None]
    np.testing.assert_array_equal(out["n"]["k"], [0, 0, 3])
    np.testing.assert_array_equal(out["_n"], [False, False, True])


def test_max_episode_steps_truncates_like_time_limit() -> None:
    envs = gym.make_vec(ID, num_envs=2, max_episode_steps=2, **KWARGS)
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    first = envs.step(_actions(rng, 2))
    second = envs.step(_actions(rng, 2))
    assert not first[3].any() and second[3].all() and not second[2].any()
    third = envs.step(_actions(rng, 2))  # NextStep: the reset step
    assert (third[1] == 0.0).all() and (third[4]["decision"] == 0).all()


def test_bad_arguments_name_the_fix() -> None:
    with pytest.raises(ConfigError, match="NextStep"):
        gym.make_vec(ID, num_envs=2, autoreset_mode="Disabled", **KWARGS)
    with pytest.raises(ConfigError, match="autoreset_mode"):
        gym.make_vec(ID, num_envs=2, autoreset_mode="sometimes", **KWARGS)
    with pytest.raises(ConfigError, match="SameStep"):
        NativeVecEnv(gym.make_vec(ID, num_envs=2, **KWARGS))  # type: ignore[arg-type]


def test_sb3_adapter_steps_as_dummy_vec_env() -> None:
    native = VecMonitor(NativeVecEnv.make(ID, N, KWARGS))
    dummy = DummyVecEnv([lambda: Monitor(gym.make(ID, **KWARGS)) for _ in range(N)])
    native.seed(11)
    dummy.seed(11)
    np.testing.assert_array_equal(native.reset(), dummy.reset())
    assert native.venv.reset_infos[0]["cost"] == dummy.reset_infos[0]["cost"]
    rng = np.random.default_rng(2)
    episodes = 0
    for _ in range(7):
        actions = _actions(rng)
        obs_a, rew_a, done_a, infos_a = native.step(actions)
        obs_b, rew_b, done_b, infos_b = dummy.step(actions)
        np.testing.assert_array_equal(obs_a, obs_b)
        np.testing.assert_array_equal(rew_a, rew_b)
        np.testing.assert_array_equal(done_a, done_b)
        assert rew_a.dtype == rew_b.dtype and done_a.dtype == done_b.dtype
        for a, b in zip(infos_a, infos_b, strict=True):
            assert a["TimeLimit.truncated"] == b["TimeLimit.truncated"]
            assert a["cost"] == b["cost"] and a["termination_reason"] == b["termination_reason"]
            if "episode" in b:
                episodes += 1
                np.testing.assert_array_equal(a["terminal_observation"], b["terminal_observation"])
                assert a["episode"]["l"] == b["episode"]["l"]
                assert a["episode"]["r"] == pytest.approx(b["episode"]["r"], rel=1e-6)
            else:
                assert "episode" not in a
    assert episodes >= N
    assert native.get_attr("config")[0].horizon == 2.5
    assert native.env_method("close", indices=[0]) == [None]


def test_train_uses_the_native_adapter_by_default(tmp_path: Path) -> None:
    from stable_baselines3.common.vec_env import VecNormalize

    from stepgym.agents.config import TrainConfig
    from stepgym.agents.policies import load_policy
    from stepgym.agents.train import build_vec_envs, train, validate

    config = TrainConfig(
        env_kwargs='{"integrator": "leapfrog", "step_mode": "timescale", '
        '"eta_range": [0.01, 0.3], "horizon": 2.5}',
        total_timesteps=128,
        n_envs=2,
        n_steps=64,
        batch_size=64,
        n_epochs=1,
        eval_freq=64,
        n_eval_episodes=2,
        checkpoint_freq=0,
        progress_bar=False,
        runs_dir=tmp_path,
    )
    train_env, eval_env = build_vec_envs(config, validate(config))
    assert isinstance(train_env, VecNormalize) and isinstance(train_env.venv, VecMonitor)
    assert isinstance(train_env.venv.venv, NativeVecEnv)
    assert isinstance(eval_env.venv.venv, NativeVecEnv)  # same wrappers as training
    train_env.close()
    eval_env.close()
    run_dir = train(config)
    for name in ("model.zip", "vecnormalize.pkl", "best/best_model.zip", "eval/evaluations.npz"):
        assert (run_dir / name).is_file(), name
    policy = load_policy(run_dir)
    assert policy.vec_normalize is not None and policy.vec_normalize.obs_rms.count > 64
