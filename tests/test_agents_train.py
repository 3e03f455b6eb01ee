"""Training: the run directory, seeding, VecNormalize saved with every model, save -> load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from agents_toy_env import register_toy
from stable_baselines3.common.vec_env import VecNormalize

from stepgym.agents.config import TrainConfig
from stepgym.agents.policies import load_policy, load_vec_normalize
from stepgym.agents.train import (
    CONFIG_FILE,
    build_model,
    build_vec_envs,
    train,
    validate,
    write_config,
)
from stepgym.errors import ConfigError

TOY = register_toy()


def tiny_config(tmp_path: Path, **overrides: object) -> TrainConfig:
    base: dict[str, object] = {
        "env_id": TOY,
        "env_kwargs": '{"step_mode": "timescale"}',
        "total_timesteps": 256,
        "n_envs": 2,
        "n_steps": 64,
        "batch_size": 64,
        "n_epochs": 2,
        "eval_freq": 128,
        "n_eval_episodes": 2,
        "checkpoint_freq": 128,
        "progress_bar": False,
        "runs_dir": tmp_path / "runs",
        "exp_name": "test",
        "seed": 3,
    }
    base.update(overrides)
    return TrainConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train(tiny_config(tmp_path_factory.mktemp("train")))


def test_run_dir_holds_config_models_stats_and_tensorboard(run_dir: Path) -> None:
    assert run_dir.name.startswith("Toy-v0__test__3__")
    record = json.loads((run_dir / CONFIG_FILE).read_text())
    assert record["config"]["seed"] == 3 and record["config"]["env_id"] == TOY
    assert record["env_kwargs"] == {"step_mode": "timescale"}
    assert "stable_baselines3" in record["versions"]
    for name in ("model.zip", "vecnormalize.pkl", "best/best_model.zip", "best/vecnormalize.pkl"):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "tb").rglob("events.out.tfevents.*"))
    assert list((run_dir / "checkpoints").glob("rl_model_*_steps.zip"))
    assert list((run_dir / "checkpoints").glob("rl_model_vecnormalize_*_steps.pkl"))
    assert (run_dir / "eval" / "evaluations.npz").is_file()
    checkpoint = load_policy(run_dir / "checkpoints" / "rl_model_256_steps.zip")
    assert checkpoint.model_path.name == "rl_model_256_steps.zip"
    assert checkpoint.vec_normalize is not None
    best_stats = load_vec_normalize(run_dir / "best" / "vecnormalize.pkl")
    assert best_stats.obs_rms.count > 1  # statistics were gathered, not a fresh object
    assert best_stats.training is False and best_stats.norm_reward is False


def test_same_seed_gives_same_model(run_dir: Path, tmp_path: Path) -> None:
    again = train(tiny_config(tmp_path, eval_freq=0, checkpoint_freq=0))
    first, second = load_policy(run_dir, use_best=False), load_policy(again, use_best=False)
    observations = np.random.default_rng(0).uniform(-1, 1, size=(16, 3)).astype(np.float32)
    np.testing.assert_array_equal(first.predict(observations)[0], second.predict(observations)[0])
    np.testing.assert_allclose(first.vec_normalize.obs_rms.mean, second.vec_normalize.obs_rms.mean)


def test_save_then_load_gives_identical_actions_with_vecnormalize(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, eval_freq=0, checkpoint_freq=0)
    env_kwargs = validate(config)
    run = tmp_path / "manual_run"
    run.mkdir()
    write_config(config, env_kwargs, run / CONFIG_FILE)
    train_env, eval_env = build_vec_envs(config, env_kwargs)
    model = build_model(config, train_env, run / "tb")
    model.learn(256)
    raw = np.random.default_rng(1).uniform([-16, -2, 0], [2, 2, 1], size=(32, 3))
    raw = raw.astype(np.float32)
    expected = model.predict(train_env.normalize_obs(raw), deterministic=True)[0]
    model.save(run / "model.zip")
    train_env.save(str(run / "vecnormalize.pkl"))
    train_env.close()
    eval_env.close()

    loaded = load_policy(run, use_best=False, trust=True)  # a bare SB3 pickle: trusted here
    assert isinstance(loaded.vec_normalize, VecNormalize)
    np.testing.assert_array_equal(loaded.predict(raw)[0], expected)
    # the statistics matter: without them the actions differ
    assert not np.array_equal(loaded.model.predict(raw, deterministic=True)[0], expected)


def test_dqn_refuses_continuous_actions(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DQN needs a discrete action space"):
        train(tiny_config(tmp_path, algo="dqn"))


def test_dqn_trains_on_discrete_actions(tmp_path: Path) -> None:
    run = train(
        tiny_config(
            tmp_path,
            algo="dqn",
            env_kwargs='{"action": "discrete"}',
            eval_freq=0,
            checkpoint_freq=0,
        )
    )
    policy = load_policy(run)
    action = policy.predict(np.zeros(3, dtype=np.float32))[0]
    assert 0 <= int(action) < 10


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"env_kwargs": "{integrator: x}"}, "must be a JSON object"),
        ({"env_kwargs": "[1, 2]"}, "must be a JSON object"),
        ({"env_kwargs": '{"no_such_argument": 1}'}, "does not accept"),
        ({"env_id": "stepgym/ThreeBdy-v0"}, "Did you mean 'stepgym/ThreeBody-v0'"),
        ({"n_envs": 0}, "n-envs must be a positive integer"),
        ({"exp_name": "a/b"}, "exp-name"),
    ],
)
def test_bad_options_raise_config_errors(
    tmp_path: Path, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        train(tiny_config(tmp_path, **overrides))
    assert not (tmp_path / "runs").exists()  # nothing written before validation passes


def test_subprocess_envs_train_the_real_three_body_env(tmp_path: Path) -> None:
    config = tiny_config(
        tmp_path,
        env_id="stepgym/ThreeBody-v0",
        vec_env="subproc",
        env_kwargs='{"integrator": "leapfrog", "step_mode": "timescale", "horizon": 3.0}',
        eval_freq=0,
        checkpoint_freq=0,
        total_timesteps=128,
    )
    run = train(config)
    policy = load_policy(run)
    assert policy.model.observation_space.shape == (8,)
    assert policy.vec_normalize is not None and policy.vec_normalize.obs_rms.count > 100


def test_log_std_init_sets_the_initial_exploration_noise(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, log_std_init=-1.5)
    train_env, _ = build_vec_envs(config, validate(config))
    model = build_model(config, train_env, tmp_path / "tb")
    np.testing.assert_allclose(model.policy.log_std.detach().numpy(), -1.5)  # type: ignore[union-attr]
