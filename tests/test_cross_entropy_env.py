"""stepgym/CrossEntropy-v0: API checks, seeding, divergence, radius action, knobs, errors."""

from __future__ import annotations

import math
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import stepgym  # noqa: F401  (registers the environments)
from stepgym.crossentropy.models import MODELS
from stepgym.crossentropy.tasks import TASKS
from stepgym.envs.cross_entropy import CrossEntropyEnv
from stepgym.errors import ConfigError, UnknownNameError
from stepgym.integrators.optimizers import OPTIMIZERS

ENV_ID = "stepgym/CrossEntropy-v0"
pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning"),
    pytest.mark.usefixtures("one_torch_thread"),
]


def make(**kwargs: Any) -> gym.Env[Any, Any]:
    return gym.make(ENV_ID, **kwargs)


def run(env: gym.Env[Any, Any], action: Any, seed: int = 0) -> list[dict[str, Any]]:
    env.reset(seed=seed)
    infos = []
    while True:
        _, reward, terminated, truncated, info = env.step(action)
        assert math.isfinite(reward)
        infos.append(info)
        if terminated or truncated:
            return infos


@pytest.mark.parametrize("model", MODELS.names())
@pytest.mark.parametrize("action", ["continuous", "discrete", "radius"])
def test_check_env_gymnasium_and_sb3(model: str, action: str) -> None:
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = CrossEntropyEnv(model=model, action=action, max_steps=3, batch_size=32, hidden=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env, skip_render_check=True)
        sb3_check_env(env, warn=False)


def test_same_seed_same_numbers() -> None:
    env = make(model="cnn_batchnorm", action="radius", max_steps=6)
    action = env.unwrapped.action_map.encode(0.5)
    first, second = run(env, action, seed=3), run(env, action, seed=3)
    other = run(env, action, seed=4)
    keys = ("loss", "val_accuracy", "rho_a", "tau", "lr", "grad_norm")
    assert [[i[k] for k in keys] for i in first] == [[i[k] for k in keys] for i in second]
    assert [i["loss"] for i in first] != [i["loss"] for i in other]


def test_huge_learning_rate_ends_diverged_without_exception() -> None:
    env = make(model="mlp", optimizer="sgd", lr=1.0, lr_range=(1e-2, 1e6), max_steps=50)
    infos = run(env, env.unwrapped.action_map.encode(1e6))
    assert infos[-1]["termination_reason"] == "diverged"
    assert len(infos) < 50


def test_radius_action_sets_tau_to_r_rho_a() -> None:
    env = make(model="mlp_layernorm", optimizer="adam", action="radius", max_steps=5)
    env.reset(seed=0)
    model = env.unwrapped.trainer.model
    for r in (0.05, 0.5, 3.0):
        before = [p.detach().clone() for p in model.parameters()]
        _, _, _, _, info = env.step(env.unwrapped.action_map.encode(r))
        moved = math.sqrt(
            sum(
                float((p.detach() - b).pow(2).sum())
                for p, b in zip(model.parameters(), before, strict=True)
            )
        )
        assert info["r"] == pytest.approx(r, rel=1e-5)
        assert info["tau"] == pytest.approx(info["r"] * info["rho_a"], rel=1e-9)
        assert moved == pytest.approx(info["tau"], rel=1e-4)
        assert info["delta_a"] == pytest.approx(math.pi / info["rho_a"], rel=1e-9)


def test_fixed_learning_rate_is_a_constant_action() -> None:
    env = make(optimizer="momentum", lr=0.01, max_steps=3)
    infos = run(env, env.unwrapped.action_map.encode(0.01))
    assert [i["lr"] for i in infos] == pytest.approx([0.01] * 3, rel=1e-5)
    assert infos[-1]["termination_reason"] == "step_budget"
    required = {
        "rho_a",
        "r",
        "tau",
        "lr",
        "loss",
        "accuracy",
        "val_accuracy",
        "step",
        "delta_a",
        "grad_norm",
        "evaluations",
    }
    assert required <= set(infos[-1])
    assert infos[-1]["evaluations"] == 9  # forward + backward + JVP per step


@pytest.mark.parametrize("mode", ["persistent", "single"])
def test_learning_rate_spike(mode: str) -> None:
    env = make(lr=1e-3, spike_factor=10.0, spike_step=1, spike_mode=mode, max_steps=4)
    infos = run(env, env.unwrapped.action_map.encode(1e-3))
    expected = [1e-3, 1e-2, 1e-2, 1e-2] if mode == "persistent" else [1e-3, 1e-2, 1e-3, 1e-3]
    assert [i["lr"] for i in infos] == pytest.approx(expected, rel=1e-5)


def test_update_cap_and_grad_clip() -> None:
    env = make(
        lr=1e-3, spike_factor=1e4, spike_step=0, update_cap="rho_a", grad_clip=0.5, max_steps=5
    )
    infos = run(env, env.unwrapped.action_map.encode(1e-3))
    assert infos[-1]["termination_reason"] == "step_budget"
    assert all(i["r"] <= 1.0 + 1e-9 and i["grad_norm"] <= 0.5 + 1e-9 for i in infos)


def test_optional_features_and_sample_sets() -> None:
    features = ["log_rho_a", "log_sharpness", "log_effective_step", "val_accuracy"]
    for sample_set in ("probe", "train"):
        env = make(model="cnn_batchnorm", features=features, sample_set=sample_set, max_steps=2)
        obs, _ = env.reset(seed=0)
        obs, *_, info = env.step(env.unwrapped.action_map.encode(1e-3))
        assert obs.shape == (4,) and env.observation_space.contains(obs)
        assert info["sharpness"] > 0 and math.isfinite(info["effective_step"])
        assert info["hvp_passes"] == 11


@pytest.mark.parametrize("task", [t for t in TASKS.names() if t != "custom"])
def test_every_task_trains(task: str) -> None:
    env = make(task=task, model="cnn", max_steps=2, n_samples=60)
    infos = run(env, env.unwrapped.action_map.encode(1e-3))
    assert infos[-1]["termination_reason"] == "step_budget"


def test_worst_case_and_custom_arrays_with_ngd() -> None:
    env = make(
        task="worst_case",
        model="linear",
        optimizer="ngd",
        lr=1.0,
        n_samples=50,
        max_steps=40,
        batch_size=None,
    )
    infos = run(env, env.unwrapped.action_map.encode(1.0))
    assert infos[-1]["val_accuracy"] == 1.0  # separated (every point, including the lone +1)
    assert infos[-1]["ngd_beta"] > 1.0
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = np.where(x[:, 0] > 0, "yes", "no")
    env = make(X=x, y=y, model="transformer", max_steps=2)
    env.reset(seed=0)
    assert env.unwrapped.trainer.data.n_classes == 2


def test_errors_name_the_fix() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'mlp_layernorm'"):
        make(model="mlp_layernrom")
    with pytest.raises(ConfigError, match="choose one of continuous, discrete, radius"):
        make(action="lr")
    with pytest.raises(ConfigError, match=r"did you mean 'batch_size'.*valid arguments"):
        make(batchsize=3)
    with pytest.raises(ConfigError, match="choose one of batch, probe, train"):
        make(sample_set="all")
    with pytest.raises(ConfigError, match="use task='custom'"):
        make(task="blobs", X=np.zeros((5, 2)), y=np.array([0, 1, 0, 1, 0]))


def test_temperature_scales_the_radius() -> None:
    torch.manual_seed(0)
    env1 = make(max_steps=1, temperature=1.0)
    env2 = make(max_steps=1, temperature=3.0, lr=1e-3)
    # the first Adam step's direction is sign-like and temperature-free up to eps
    i1 = run(env1, env1.unwrapped.action_map.encode(1e-3))[0]
    i2 = run(env2, env2.unwrapped.action_map.encode(1e-3))[0]
    assert i2["rho_a"] / i1["rho_a"] == pytest.approx(3.0, rel=1e-2)


@pytest.mark.parametrize("sample_set", ["batch", "probe"])
def test_finite_difference_radius_tracks_the_exact_one(sample_set: str) -> None:
    kwargs = {
        "model": "mlp_layernorm",
        "action": "radius",
        "max_steps": 8,
        "sample_set": sample_set,
    }
    middle = np.zeros(1, dtype=np.float32)  # r in the middle of r_range (log scale)
    exact = run(make(**kwargs), middle)
    approx = run(make(radius_method="fd", **kwargs), middle)
    for e, a in zip(exact, approx, strict=True):
        assert a["rho_a"] == pytest.approx(e["rho_a"], rel=2e-2)
        assert a["tau"] == pytest.approx(a["r"] * a["rho_a"], rel=1e-6)
    assert approx[-1]["jvp_passes"] == 0


@pytest.mark.slow
def test_spike_acceptance_experiment() -> None:
    """Radius at r = 0.5 survives a x10,000 spike (>= 90% median); plain Adam does not."""
    from stepgym.reproduce.softmax_spike import run_once

    seeds = range(5)
    controlled = [run_once("mlp_layernorm", "radius r=0.5", s) for s in seeds]
    plain = [run_once("mlp_layernorm", "plain Adam", s) for s in seeds]
    assert sorted(r.val_accuracy for r in controlled)[2] >= 0.90
    assert all(r.end_reason == "step_budget" for r in controlled)
    assert all(r.end_reason == "diverged" or r.val_accuracy < 0.7 for r in plain)


@pytest.mark.parametrize("optimizer", OPTIMIZERS.names())
def test_every_optimizer_trains_in_both_action_families(optimizer: str) -> None:
    for action, setting in (("radius", 0.5), ("continuous", None)):
        env = make(model="mlp_layernorm", optimizer=optimizer, action=action, max_steps=5)
        value = env.unwrapped.config.base_lr if setting is None else setting
        infos = run(env, env.unwrapped.action_map.encode(value))
        assert infos[-1]["termination_reason"] == "step_budget"
        assert infos[-1]["val_accuracy"] > infos[0]["val_accuracy"] - 0.2
        if action == "radius":
            assert all(i["r"] == pytest.approx(0.5, rel=1e-5) for i in infos)


def _validation(env: gym.Env[Any, Any], x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Validation (loss, accuracy) of the env's current model on (x, y), computed here."""
    model = env.unwrapped.trainer.model
    model.eval()
    with torch.no_grad():
        logits = model(x)
    model.train()
    loss = float(torch.nn.functional.cross_entropy(logits, y))
    return loss, float((logits.argmax(dim=-1) == y).float().mean())


def test_validation_runs_at_its_cadence_and_after_the_last_step() -> None:
    env, dense_env = make(max_steps=7, val_every=3), make(max_steps=7, val_every=1)
    action = env.unwrapped.action_map.encode(3e-3)
    _, reset_info = env.reset(seed=0)
    infos, dense = run(env, action), run(dense_env, action)
    assert [i["val_step"] for i in infos] == [0, 0, 3, 3, 3, 6, 7]
    assert [i["eval_forward_passes"] for i in infos] == [1, 1, 2, 2, 2, 3, 4]
    assert [i["val_step"] for i in dense] == list(range(1, 8))
    # training does not depend on the cadence; the held metrics are the measurements
    assert [i["loss"] for i in infos] == [i["loss"] for i in dense]
    assert [i["rho_a"] for i in infos] == [i["rho_a"] for i in dense]
    for info in infos:
        measured = dense[info["val_step"] - 1] if info["val_step"] else reset_info
        assert (info["val_loss"], info["val_accuracy"]) == (
            measured["val_loss"],
            measured["val_accuracy"],
        )
    assert dense[2]["val_loss"] != dense[1]["val_loss"]  # the held value is really stale
    # the reward sees the latest measurement: gains only where one was taken, same total
    gains = [i["reward_terms"]["val_accuracy_gain"] for i in infos]
    assert [g != 0.0 for g in gains[:2] + gains[3:5]] == [False] * 4
    assert gains[2] == pytest.approx(dense[2]["val_accuracy"] - reset_info["val_accuracy"])
    dense_gains = [i["reward_terms"]["val_accuracy_gain"] for i in dense]
    assert sum(gains) == pytest.approx(sum(dense_gains))
    assert sum(gains) == pytest.approx(infos[-1]["val_accuracy"] - reset_info["val_accuracy"])
    loss_env = make(max_steps=4, val_every=2, reward="loss")
    progress = [i["reward_terms"]["loss_progress"] for i in run(loss_env, action)]
    assert progress[0] == 0.0 and progress[2] == 0.0 and progress[1] != 0.0


def test_validation_subset_between_whole_split_measurements() -> None:
    env = make(max_steps=4, val_every=2, val_size=50)
    action = env.unwrapped.action_map.encode(3e-3)
    env.reset(seed=0)
    trainer = env.unwrapped.trainer
    data = trainer.data
    x_sub, y_sub = trainer.batches.val_subset
    assert len(y_sub) == 50 < len(data.y_val)
    for step in range(1, 5):
        *_, info = env.step(action)
        if step == 2:  # in between: the subset
            assert (info["val_loss"], info["val_accuracy"]) == _validation(env, x_sub, y_sub)
            assert info["val_loss"] != _validation(env, data.x_val, data.y_val)[0]
    # the last step: the whole split, so the final score is exact
    assert (info["val_loss"], info["val_accuracy"]) == _validation(env, data.x_val, data.y_val)
    with pytest.raises(ConfigError, match="val_every must be a positive integer"):
        make(val_every=0)


def test_costly_measurements_run_only_for_features_that_declare_them() -> None:
    from stepgym.crossentropy.features import needed_measurements

    assert needed_measurements(("log_sharpness", "loss", "log_sharpness")) == ("sharpness",)
    assert needed_measurements(("log_effective_step",)) == ("effective_step",)
    infos = run(make(max_steps=2), np.zeros(1, dtype=np.float32))
    assert infos[-1]["hvp_passes"] == 0
    assert "sharpness" not in infos[-1] and "effective_step" not in infos[-1]
    infos = run(make(max_steps=2, features=["log_effective_step"]), np.zeros(1, dtype=np.float32))
    assert infos[-1]["hvp_passes"] == 0 and infos[-1]["effective_step"] > 0
