"""Hardening (issue 13): actions, deterministic infos, rendering, strict configs, custom data,
trusted file loading, atomic run directories, interrupts and resuming.

Each test names the defect it pins; every one of them failed on the code before the fix.
"""

from __future__ import annotations

import json
import math
import pickle
import threading
import warnings
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from agents_toy_env import register_toy

import stepgym  # noqa: F401  (registers the environments)
from stepgym.errors import ConfigError

THREE_BODY = "stepgym/ThreeBody-v0"
CROSS_ENTROPY = "stepgym/CrossEntropy-v0"
TOY = register_toy()
pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning"),
    pytest.mark.usefixtures("one_torch_thread"),
]

SMALL_THREE_BODY: dict[str, Any] = {"integrator": "leapfrog", "slice_time": 0.05, "horizon": 0.2}
SMALL_CROSS_ENTROPY: dict[str, Any] = {
    "task": "blobs",
    "n_samples": 120,
    "model": "linear",
    "max_steps": 4,
    "batch_size": 32,
}


# -- 6. actions: wrong shapes and non-numbers are invalid, and never pay ------------------------
BAD_CONTINUOUS = [
    np.zeros((1, 1), dtype=np.float32),
    np.float32(0.5),
    0.5,
    "0.5",
    np.array(["0.5"]),
    np.array([True]),
    None,
    [0.1, 0.2],
]


@pytest.mark.parametrize("env_id", [THREE_BODY, CROSS_ENTROPY])
@pytest.mark.parametrize("action", BAD_CONTINUOUS, ids=repr)
def test_malformed_continuous_action_ends_with_invalid_action(env_id: str, action: Any) -> None:
    kwargs = SMALL_THREE_BODY if env_id == THREE_BODY else SMALL_CROSS_ENTROPY
    env = gym.make(env_id, **kwargs).unwrapped
    env.reset(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, reward, terminated, truncated, info = env.step(action)
    assert terminated and not truncated
    assert info["termination_reason"] == "invalid_action"
    assert math.isfinite(reward)


@pytest.mark.parametrize("action", [np.array([2]), np.array([[1]]), 1.0, "1", np.array([1.5])])
def test_malformed_discrete_action_is_invalid(action: Any) -> None:
    from stepgym.actions import InvalidActionError, LogActionMap

    disc = LogActionMap(1e-4, 1e-1, "discrete", n=4)
    assert disc.decode(np.array([2])) == pytest.approx(1e-2)
    if isinstance(action, np.ndarray) and action.shape == (1,) and action.dtype.kind == "i":
        return
    with pytest.raises(InvalidActionError):
        disc.decode(action)


@pytest.mark.parametrize("reward", ["accuracy", "loss", "accuracy_cost", {"evaluation_cost": 1.0}])
def test_cross_entropy_invalid_action_pays_no_better_than_divergence(reward: Any) -> None:
    """Before: an invalid action earned 0, more than a diverging step (a policy could learn to
    end poor episodes with NaN)."""
    kwargs = {**SMALL_CROSS_ENTROPY, "reward": reward}
    env = gym.make(CROSS_ENTROPY, **kwargs).unwrapped
    env.reset(seed=1)
    env.step(env.action_map.encode(env.config.base_lr))
    _, invalid_reward, *_ = env.step(np.array([np.nan], dtype=np.float32))
    legit_rewards = []
    for lr_factor in (1.0, 1e2):  # an ordinary step and one at the top of the range
        env.reset(seed=1)
        env.step(env.action_map.encode(env.config.base_lr))
        legit_rewards.append(env.step(env.action_map.encode(env.config.base_lr * lr_factor))[1])
    # any loss above divergence_loss is a divergence: the first step diverges
    diverging = gym.make(CROSS_ENTROPY, **kwargs, divergence_loss=1e-6).unwrapped
    diverging.reset(seed=1)
    _, diverged_reward, terminated, _, info = diverging.step(
        diverging.action_map.encode(diverging.config.base_lr)
    )
    assert terminated and info["termination_reason"] == "diverged"
    assert invalid_reward <= diverged_reward
    assert invalid_reward <= min(legit_rewards)
    assert invalid_reward < 0


@pytest.mark.parametrize("reward", ["default", "linear_cost", "accuracy_only", "seed_paper"])
def test_three_body_invalid_action_pays_no_better_than_any_failure(reward: str) -> None:
    """Before: the invalid action skipped the accuracy term's jump to |dE| > limit, so it paid
    more than an energy-error failure at the same point."""
    from stepgym.threebody.records import ThreeBodyTransition

    env = gym.make(THREE_BODY, **SMALL_THREE_BODY, reward=reward).unwrapped
    env.reset(seed=0)
    env.step(env.action_map.encode(1e-3))
    state = env._state_record
    _, invalid_reward, terminated, _, info = env.step(np.array([np.inf], dtype=np.float32))
    assert terminated and info["termination_reason"] == "invalid_action"
    limit = math.log10(env.config.energy_error_limit)
    low, high = env.action_map.low, env.action_map.high
    failures = []
    for log_after in [*np.linspace(limit + 1e-9, 3.0, 121), 10.0, 100.0, 300.0]:
        for evaluations, setting in zip((0.0, 1e3, 1e6), (low, high, low), strict=True):
            transition = ThreeBodyTransition(
                state.log_energy_error,
                float(log_after),
                evaluations,
                env._evaluations + evaluations,
                setting,
                2,
                state.cost_weight,
                "energy_error",
                state.progress,
            )
            failures.append(env.reward_fn(transition)[0])
    assert invalid_reward <= min(failures) + 1e-9


# -- 2. deterministic info by default: Gymnasium's checker on the default envs -----------------
@pytest.mark.parametrize("env_id", [THREE_BODY, CROSS_ENTROPY])
def test_check_env_passes_on_default_envs(env_id: str) -> None:
    from gymnasium.utils.env_checker import check_env

    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env.unwrapped)
    assert "wall_time" not in env.reset(seed=0)[1]


def test_wall_time_is_opt_in_and_evaluation_still_reports_it() -> None:
    from stepgym.agents.domains import THREE_BODY_DOMAIN
    from stepgym.agents.envs import merged

    env = gym.make(THREE_BODY, **SMALL_THREE_BODY, wall_time_in_info=True)
    assert "wall_time" in env.reset(seed=0)[1]
    held_out = gym.make(THREE_BODY, **merged(SMALL_THREE_BODY, THREE_BODY_DOMAIN.held_out))
    _, info = held_out.reset(seed=0)
    _, _, _, _, info = held_out.step(held_out.unwrapped.action_map.encode(1e-3))
    assert THREE_BODY_DOMAIN.metrics["wall_time"]([info]) >= 0.0


# -- 3. rendering and SB3's make_vec_env ----------------------------------------------------
@pytest.mark.parametrize("env_id", [THREE_BODY, CROSS_ENTROPY])
def test_make_vec_env_works_on_both_ids(env_id: str) -> None:
    from stable_baselines3.common.env_util import make_vec_env

    kwargs = SMALL_THREE_BODY if env_id == THREE_BODY else SMALL_CROSS_ENTROPY
    venv = make_vec_env(env_id, n_envs=8, seed=0, env_kwargs=kwargs)
    try:
        observations = venv.reset()
        assert observations.shape[0] == 8
        actions = np.stack([venv.action_space.sample() for _ in range(8)])
        observations, rewards, _, _ = venv.step(actions)
        assert np.isfinite(observations).all() and np.isfinite(rewards).all()
    finally:
        venv.close()
    bare = make_vec_env(env_id, n_envs=8)  # SB3's idiom exactly, default arguments
    assert bare.reset().shape[0] == 8 and bare.render_mode == "rgb_array"
    bare.close()


@pytest.mark.parametrize("env_id", [THREE_BODY, CROSS_ENTROPY])
def test_render_returns_an_rgb_picture_of_the_episode(env_id: str) -> None:
    kwargs = SMALL_THREE_BODY if env_id == THREE_BODY else SMALL_CROSS_ENTROPY
    env = gym.make(env_id, render_mode="rgb_array", **kwargs)
    assert "rgb_array" in env.metadata["render_modes"]
    env.reset(seed=0)
    first = env.render()
    for _ in range(3):
        env.step(env.action_space.sample())
    frame = env.render()
    assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8
    assert frame.ndim == 3 and frame.shape[2] == 3 and min(frame.shape[:2]) >= 100
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 5  # not a blank canvas
    assert isinstance(first, np.ndarray) and first.shape == frame.shape
    assert not np.array_equal(first, frame)  # the picture follows the episode
    env.close()


@pytest.mark.parametrize(
    ("env_id", "kwargs", "baselines", "parameter"),
    [
        (THREE_BODY, SMALL_THREE_BODY, ("fixed", "timescale"), 1e-2),
        (CROSS_ENTROPY, SMALL_CROSS_ENTROPY, ("fixed_lr",), 1e-2),
    ],
)
def test_evaluate_saves_one_picture_per_controller(
    env_id: str,
    kwargs: dict[str, Any],
    baselines: tuple[str, ...],
    parameter: float,
    tmp_path: Path,
) -> None:
    from stepgym.agents.config import EvaluateConfig
    from stepgym.agents.evaluate import evaluate

    report = evaluate(
        EvaluateConfig(
            env_id=env_id,
            env_kwargs=json.dumps(kwargs),
            baselines=baselines,
            baseline_param=parameter,
            n_episodes=1,
            out_dir=tmp_path,
            pictures=True,
        )
    )
    pictures = sorted((tmp_path / "pictures").glob("*.png"))
    assert len(pictures) == len(baselines) == len(report.summaries)
    for path in pictures:
        assert path.read_bytes()[:4] == b"\x89PNG"
    assert sum(name.startswith("picture:") for name in report.files) == len(baselines)


def test_evaluate_pictures_need_a_rendering_env(tmp_path: Path) -> None:
    from stepgym.agents.config import EvaluateConfig
    from stepgym.agents.evaluate import evaluate

    with pytest.raises(ConfigError):
        evaluate(
            EvaluateConfig(
                env_id=TOY,
                baselines=("fixed",),
                baseline_param=1e-2,
                n_episodes=1,
                out_dir=tmp_path,
                pictures=True,
            )
        )
    assert not (tmp_path / "episodes.csv").exists()  # refused before any episode ran


def test_render_uses_no_global_matplotlib_backend_switch() -> None:
    import matplotlib

    before = matplotlib.get_backend()
    env = gym.make(CROSS_ENTROPY, render_mode="rgb_array", **SMALL_CROSS_ENTROPY)
    env.reset(seed=0)
    env.render()
    assert matplotlib.get_backend() == before


@pytest.mark.parametrize("env_id", [THREE_BODY, CROSS_ENTROPY])
def test_unknown_render_mode_names_the_valid_one(env_id: str) -> None:
    with pytest.raises(ConfigError, match="rgb_array"):
        gym.make(env_id, render_mode="ansi")


# -- 4. strict configs: types at gym.make, unknown keywords, custom data -----------------------
@pytest.mark.parametrize(
    ("env_id", "kwargs", "fragment"),
    [
        (THREE_BODY, {"horizon": "10"}, r"horizon='10' \(a str\) is not a number.*horizon=10"),
        (THREE_BODY, {"n_actions": True}, r"n_actions=True \(a bool\) is not an integer"),
        (THREE_BODY, {"steps_per_decision": 2.5}, r"steps_per_decision=2.5 .*an integer"),
        (THREE_BODY, {"wall_time_in_info": 1}, r"wall_time_in_info=1 .*true or false"),
        (THREE_BODY, {"eta_range": "0.1"}, r"eta_range='0.1' .*pair \(low, high\) of numbers"),
        (THREE_BODY, {"cost_weight": "1"}, r"cost_weight='1'.*cost_weight=1"),
        (THREE_BODY, {"integrator": 3}, r"integrator=3 \(a int\) is not a string"),
        (CROSS_ENTROPY, {"lr": "0.1"}, r"lr='0.1' \(a str\) is not a number or None.*lr=0.1"),
        (CROSS_ENTROPY, {"max_steps": 10.0}, r"max_steps=10.0 .*an integer"),
        (CROSS_ENTROPY, {"batch_size": False}, r"batch_size=False .*true/false are not numbers"),
        (CROSS_ENTROPY, {"reward": {"divergence": "1"}}, r"reward=.*dict \{a string: a number\}"),
        (CROSS_ENTROPY, {"features": [1, 2]}, r"features=\[1, 2\].*list of strings"),
    ],
)
def test_wrong_types_fail_at_make_naming_field_value_and_fix(
    env_id: str, kwargs: dict[str, Any], fragment: str
) -> None:
    """Before: horizon="10" or lr="0.1" passed gym.make and failed later with a TypeError."""
    with pytest.raises(ConfigError, match=fragment):
        gym.make(env_id, **kwargs)


def test_sequences_accept_lists_and_tuples() -> None:
    env = gym.make(THREE_BODY, eta_range=[1e-3, 1e-1], features=["progress", "last_action"])
    assert env.unwrapped.config.eta_range == (1e-3, 1e-1)
    env = gym.make(CROSS_ENTROPY, lr_range=[0.1, 10], features=("loss", "progress"), lr=1)
    assert env.unwrapped.config.lr_range == (0.1, 10.0)


@pytest.mark.parametrize(
    ("env_id", "typo", "fix"),
    [(THREE_BODY, "horizn", "horizon"), (CROSS_ENTROPY, "max_step", "max_steps")],
)
def test_unknown_keyword_says_did_you_mean(env_id: str, typo: str, fix: str) -> None:
    with pytest.raises(ConfigError, match=f"did you mean '{fix}'"):
        gym.make(env_id, **{typo: 1})


def test_env_kwargs_json_strings_fail_before_training(tmp_path: Path) -> None:
    from stepgym.agents.config import TrainConfig
    from stepgym.agents.train import validate
    from stepgym.cli import main

    config = TrainConfig(env_kwargs='{"horizon": "10"}', runs_dir=tmp_path)
    with pytest.raises(ConfigError, match="horizon='10'"):
        validate(config)
    status = main(
        [
            "train",
            "--env-kwargs",
            '{"lr": "0.1"}',
            "--env-id",
            CROSS_ENTROPY,
            "--runs-dir",
            str(tmp_path),
            "--total-timesteps",
            "8",
        ]
    )
    assert status == 2
    assert not list(tmp_path.rglob("model*.zip"))


def _blobs(n: int = 40, classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 3)), np.arange(n) % classes


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ("nan_label", "NaN or infinite label"),
        ("inf_feature", "NaN or infinite values"),
        ("zero_features", "zero feature columns"),
        ("few_rows", "at least 4"),
        ("too_few_for_split", "each side needs one per class"),
        ("singleton_class", "single row"),
        ("extreme_val_fraction", "choose val_fraction in"),
        ("none_label", "None labels"),
    ],
)
def test_custom_data_is_validated_at_make(change: str, fragment: str) -> None:
    """Before: NaN labels became an extra class; 4-10 rows or an extreme val_fraction failed at
    reset inside scikit-learn; zero features were accepted."""
    x, y = _blobs()
    kwargs: dict[str, Any] = {}
    if change == "nan_label":
        y = y.astype(float)
        y[3] = np.nan
    elif change == "inf_feature":
        x[5, 1] = np.inf
    elif change == "zero_features":
        x = x[:, :0]
    elif change == "few_rows":
        x, y = x[:3], y[:3]
    elif change == "too_few_for_split":
        x, y = _blobs(n=8, classes=4)
    elif change == "singleton_class":
        y = y.copy()
        y[0] = 7
    elif change == "extreme_val_fraction":
        kwargs["val_fraction"] = 0.99
    elif change == "none_label":
        y = np.array([None, *(["a", "b"] * 19), "a"], dtype=object)
    with pytest.raises(ConfigError, match=fragment):
        gym.make(CROSS_ENTROPY, X=x, y=y, **kwargs)


def test_valid_custom_data_still_trains() -> None:
    x, y = _blobs(n=12, classes=3)
    env = gym.make(CROSS_ENTROPY, X=x, y=y, model="linear", max_steps=2, val_fraction=0.25)
    env.reset(seed=0)
    assert env.unwrapped.trainer.data.n_classes == 3


def test_builtin_task_with_impossible_split_fails_with_config_error() -> None:
    env = gym.make(CROSS_ENTROPY, task="blobs", n_samples=200, val_fraction=0.01)
    with pytest.raises(ConfigError, match="val_fraction"):
        env.reset(seed=0)


# -- 1, 5, 7: run directories: trust boundary, damaged files, atomic saves, interrupts, resume --
class _WritesMarker:
    """A pickle payload that creates a file when unpickled (standing in for any code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def _stop_callback(at: int, error: type[BaseException]) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback

    class StopAt(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps >= at:
                raise error("stop here")
            return True

    return StopAt()


def _tiny(tmp_path: Path, **overrides: Any) -> Any:
    from stepgym.agents.config import TrainConfig

    base: dict[str, Any] = {
        "env_id": TOY,
        "total_timesteps": 128,
        "n_envs": 1,
        "n_steps": 32,
        "batch_size": 32,
        "n_epochs": 1,
        "eval_freq": 0,
        "checkpoint_freq": 32,
        "progress_bar": False,
        "runs_dir": tmp_path / "runs",
        "exp_name": "hard",
        "seed": 1,
    }
    base.update(overrides)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from stepgym.agents.train import train

    return train(_tiny(tmp_path_factory.mktemp("finished"), eval_freq=64, n_eval_episodes=1))


def _copy_run(run: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(run, tmp_path / run.name))


def test_finished_run_has_npz_statistics_and_loads_without_pickles(finished_run: Path) -> None:
    from stepgym.agents.policies import load_policy

    record = json.loads((finished_run / "config.json").read_text())
    assert record["status"] == "finished" and record["num_timesteps"] == 128
    for name in ("model.zip", "vecnormalize.npz", "best/best_model.zip", "best/vecnormalize.npz"):
        assert (finished_run / name).is_file(), name
    assert (finished_run / "checkpoints" / "rl_model_vecnormalize_64_steps.npz").is_file()
    assert not list(finished_run.rglob("*.partial*"))  # no temporary file left behind
    policy = load_policy(finished_run, use_best=False)
    assert policy.model.num_timesteps == 128
    assert policy.vec_normalize is not None and policy.vec_normalize.obs_rms.count > 100


def test_malicious_statistics_pickle_is_refused_unless_trusted(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: vecnormalize.pkl was unpickled on load; a crafted one ran code."""
    from stepgym.agents.policies import load_policy
    from stepgym.cli import main

    run = _copy_run(finished_run, tmp_path)
    marker = tmp_path / "pwned"
    (run / "vecnormalize.npz").unlink()
    (run / "vecnormalize.pkl").write_bytes(pickle.dumps(_WritesMarker(marker)))
    with pytest.raises(ConfigError, match="--trust"):
        load_policy(run, use_best=False)
    status = main(["evaluate", "--policy", str(run), "--no-use-best", "--n-episodes", "1"])
    assert status == 2 and "--trust" in capsys.readouterr().err
    assert not marker.exists()
    with pytest.raises(ConfigError):  # trusted: the payload runs (then is not statistics)
        load_policy(run, use_best=False, trust=True)
    assert marker.exists()


def test_malicious_pickles_inside_the_model_zip_are_never_loaded(
    finished_run: Path, tmp_path: Path
) -> None:
    """Before: Algorithm.load deserialised the zip's cloudpickled entries (code ran)."""
    import base64
    import io

    import torch

    from stepgym.agents.policies import load_policy

    run = _copy_run(finished_run, tmp_path)
    marker = tmp_path / "pwned"
    payload = base64.b64encode(pickle.dumps(_WritesMarker(marker))).decode()
    model = run / "model.zip"
    with zipfile.ZipFile(model) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(entries["data"])
    for key in ("policy_class", "observation_space", "action_space", "lr_schedule"):
        data[key] = {":serialized:": payload}
    entries["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(model, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    policy = load_policy(run, use_best=False)  # loads: the pickled entries are not needed
    assert policy.predict(np.zeros(3, dtype=np.float32))[0].shape == (1,)
    assert not marker.exists()
    buffer = io.BytesIO()
    torch.save({"weights": _WritesMarker(marker)}, buffer)
    entries["policy.pth"] = buffer.getvalue()
    with zipfile.ZipFile(model, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    with pytest.raises(ConfigError, match="could not load the model"):
        load_policy(run, use_best=False)
    assert not marker.exists()


def test_truncated_model_zip_gives_one_line_and_exit_2(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: AssertionError with a traceback and exit 1."""
    from stepgym.cli import main

    run = _copy_run(finished_run, tmp_path)
    content = (run / "model.zip").read_bytes()
    (run / "model.zip").write_bytes(content[: len(content) // 2])
    status = main(["evaluate", "--policy", str(run / "model.zip"), "--n-episodes", "1"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("error: could not load the model") and err.count("\n") == 1


def test_help_says_what_trust_means(capsys: pytest.CaptureFixture[str]) -> None:
    from stepgym.cli import main

    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--trust" in out and "unpickling runs any code" in out.lower()


def test_run_directories_are_created_exclusively(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: naming (exists()) and mkdir were two steps, so simultaneous runs could race."""
    import importlib

    train_module = importlib.import_module("stepgym.agents.checkpoints")
    monkeypatch.setattr(train_module.time, "time", lambda: 1_000_000.0)
    config = _tiny(tmp_path)
    made: list[Path] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        made.append(train_module.create_run_dir(config)[1])

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(made)) == 8 and all(path.is_dir() for path in made)


def test_failed_train_leaves_no_finished_looking_model(tmp_path: Path) -> None:
    """Before: the finally clause saved model.zip after any error."""
    from stepgym.agents.train import train

    with pytest.raises(RuntimeError, match="stop here"):
        train(_tiny(tmp_path), callbacks=[_stop_callback(40, RuntimeError)])
    (run,) = (tmp_path / "runs").iterdir()
    assert not (run / "model.zip").exists() and not (run / "model_interrupted.zip").exists()
    record = json.loads((run / "config.json").read_text())
    assert record["status"] == "failed" and "stop here" in record["error"]


def test_ctrl_c_saves_a_clearly_marked_partial_model(tmp_path: Path) -> None:
    """Before: an interrupted run saved model.zip, indistinguishable from a finished one."""
    from stepgym.agents.policies import load_policy
    from stepgym.agents.train import train

    with pytest.raises(KeyboardInterrupt):
        train(_tiny(tmp_path), callbacks=[_stop_callback(80, KeyboardInterrupt)])
    (run,) = (tmp_path / "runs").iterdir()
    assert not (run / "model.zip").exists()
    assert (run / "model_interrupted.zip").is_file()
    assert (run / "vecnormalize_interrupted.npz").is_file()
    record = json.loads((run / "config.json").read_text())
    assert record["status"] == "interrupted" and record["num_timesteps"] == 80
    with pytest.raises(ConfigError, match="--resume"):
        load_policy(run, use_best=False)
    partial = load_policy(run / "model_interrupted.zip")
    assert partial.model.num_timesteps == 80


def test_resume_continues_steps_and_statistics(tmp_path: Path) -> None:
    from stable_baselines3.common.callbacks import BaseCallback

    from stepgym.agents.runfiles import read_model_data, read_stats
    from stepgym.agents.train import train

    with pytest.raises(KeyboardInterrupt):
        train(_tiny(tmp_path), callbacks=[_stop_callback(80, KeyboardInterrupt)])
    (run,) = (tmp_path / "runs").iterdir()
    seen: dict[str, float] = {}

    class AtStart(BaseCallback):
        def _on_training_start(self) -> None:
            seen["steps"] = self.model.num_timesteps
            seen["count"] = self.model.get_vec_normalize_env().obs_rms.count

        def _on_step(self) -> bool:
            return True

    from stepgym.agents.config import TrainConfig

    again = train(TrainConfig(resume=run, progress_bar=False), callbacks=[AtStart()])
    assert again == run
    saved = read_stats(run / "vecnormalize_interrupted.npz").arrays
    assert seen["steps"] == 80
    # the saved statistics plus the one reset observation learn() normalises first
    assert seen["count"] == pytest.approx(float(saved["obs_count"]) + 1)
    # PPO stops at the end of the rollout (32 steps) that passes the 128-step target
    assert 128 <= read_model_data(run / "model.zip")["num_timesteps"] < 128 + 32
    record = json.loads((run / "config.json").read_text())
    assert record["status"] == "finished" and record["resumed"][0]["num_timesteps"] == 80
    assert not (run / "model_interrupted.zip").exists()
    assert (run / "checkpoints" / "rl_model_128_steps.zip").is_file()
    with pytest.raises(ConfigError, match=r"already trained for 1[2-5][0-9] of 128"):
        train(TrainConfig(resume=run, progress_bar=False))


def test_dqn_resume_restores_its_replay_buffer_from_plain_arrays(tmp_path: Path) -> None:
    from stable_baselines3.common.callbacks import BaseCallback

    from stepgym.agents.config import TrainConfig
    from stepgym.agents.replay import replay_path_for
    from stepgym.agents.train import train

    dqn = {"algo": "dqn", "env_kwargs": '{"action": "discrete"}', "checkpoint_freq": 32}
    with pytest.raises(KeyboardInterrupt):
        train(_tiny(tmp_path, **dqn), callbacks=[_stop_callback(80, KeyboardInterrupt)])
    (run,) = (tmp_path / "runs").iterdir()
    saved = replay_path_for(run / "model_interrupted.zip")
    with np.load(saved, allow_pickle=False) as data:
        # the 80th transition is stored after the callback that interrupts at step 80
        assert int(data["pos"]) == 79 and data["observations"].shape[0] == 79
        first_obs = data["observations"][:5].copy()
    # only the newest checkpoint keeps a buffer beside it
    assert [p.name for p in (run / "checkpoints").glob("*_replay.npz")] == [
        "rl_model_64_steps_replay.npz"
    ]
    seen: dict[str, Any] = {}

    class AtStart(BaseCallback):
        def _on_training_start(self) -> None:
            seen["pos"] = self.model.replay_buffer.pos
            seen["obs"] = self.model.replay_buffer.observations[:5].copy()

        def _on_step(self) -> bool:
            return True

    train(TrainConfig(resume=run, progress_bar=False), callbacks=[AtStart()])
    assert seen["pos"] == 79
    np.testing.assert_array_equal(seen["obs"], first_obs)


def test_a_replay_buffer_that_does_not_fit_is_refused_with_the_fix(tmp_path: Path) -> None:
    from stable_baselines3 import DQN

    from stepgym.agents.replay import replay_path_for, restore_replay

    env = gym.make(TOY, action="discrete")
    model = DQN("MlpPolicy", env, buffer_size=100, learning_starts=1000, seed=0)
    model_path = tmp_path / "model.zip"
    np.savez(replay_path_for(model_path), observations=np.zeros((5, 1, 7), np.float32))
    with pytest.raises(ConfigError, match="not a replay buffer saved by stepgym"):
        restore_replay(model, model_path)
    wrong_shape = np.zeros((5, 1, 7), np.float32)
    np.savez(replay_path_for(model_path), observations=wrong_shape, pos=5, full=False)
    with pytest.raises(ConfigError, match="does not fit this run's buffer"):
        restore_replay(model, model_path)
    assert not restore_replay(model, tmp_path / "other.zip")  # no file: nothing restored
