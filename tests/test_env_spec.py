"""Environment declarations: found in the env modules, read without importing them, added by
a plugin through the ``stepgym.envs`` entry-point group or a call, checked for mistakes."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import warnings
from importlib.metadata import EntryPoint
from pathlib import Path

import gymnasium as gym
import pytest

from stepgym.envs import spec as specs
from stepgym.envs.spec import EnvSpec, env_spec, read_declaration, register_all, register_env
from stepgym.episodes import Domain, EndReasons, final
from stepgym.errors import ConfigError, UnknownNameError

ROOT = Path(__file__).resolve().parents[1]


def test_import_stepgym_registers_the_builtin_envs_without_importing_them() -> None:
    code = (
        "import sys, gymnasium as gym, stepgym\n"
        "spec = gym.registry['stepgym/ThreeBody-v0']\n"
        "print(spec.vector_entry_point, 'stepgym/CrossEntropy-v0' in gym.registry,\n"
        "      'stepgym.envs.three_body' in sys.modules, 'torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout.split()
    assert out == ["stepgym.envs.vector:three_body_vector", "True", "False", "False"]


def test_builtin_specs_are_the_env_modules_declarations() -> None:
    from stepgym.envs.three_body import ENV_SPEC, ThreeBodyEnv

    spec = env_spec("stepgym/ThreeBody-v0")
    assert spec is ENV_SPEC and spec.end_reasons is ThreeBodyEnv.end_reasons
    assert spec.end_reasons.truncation == {"horizon"}
    assert {"energy_error", "stalled", "invalid_action"} == spec.end_reasons.failure
    assert "escape" in spec.end_reasons.terminal - spec.end_reasons.failure
    declared = read_declaration("stepgym.envs.three_body")
    assert declared is not None and declared.vector_entry_point == spec.vector_entry_point
    assert read_declaration("stepgym.envs.base") is None


def test_deprecated_names_still_answer_with_a_warning() -> None:
    import stepgym.envs
    import stepgym.envs.base

    with pytest.warns(DeprecationWarning, match="env_specs"):
        rows = stepgym.envs.ENV_SPECS
    assert ("stepgym/ThreeBody-v0", "stepgym.envs.three_body:ThreeBodyEnv") in {
        row[:2] for row in rows
    }
    with pytest.warns(DeprecationWarning, match="end_reasons.truncation"):
        assert {"horizon", "step_budget"} == stepgym.envs.base.TRUNCATION_REASONS
    with pytest.warns(DeprecationWarning, match="END_REASONS.failure"):
        from stepgym.agents.domains import THREE_BODY_FAILURES
    assert env_spec("stepgym/ThreeBody-v0").end_reasons.failure == THREE_BODY_FAILURES


PLUGIN = """
from stepgym.envs.spec import EnvSpec
from stepgym.episodes import EndReasons

PREFIX = "stepgym_plugin/"
ENV_SPEC = EnvSpec(
    id=PREFIX + "{name}-v0",
    entry_point="toy_quadratic_env:QuadraticEnv",
    end_reasons=EndReasons(terminal=frozenset({{"converged", "blew_up"}}),
                           truncation=frozenset({{"out_of_steps"}})),
)
"""


def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> str:
    (tmp_path / f"plugin_{name.lower()}.py").write_text(textwrap.dedent(PLUGIN.format(name=name)))
    monkeypatch.syspath_prepend(str(tmp_path))
    return f"plugin_{name.lower()}"


def test_an_entry_point_plugin_registers_and_a_broken_one_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import toy_quadratic_env  # noqa: F401  (the plugin's entry point builds its class)

    module = plugin(tmp_path, monkeypatch, "ViaEntryPoint")
    points = [
        EntryPoint("good", f"{module}:ENV_SPEC", specs.ENTRY_POINT_GROUP),
        EntryPoint("broken", "no_such_module_anywhere:ENV_SPEC", specs.ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(specs, "entry_points", lambda group: points)
    with caplog.at_level(logging.WARNING, logger="stepgym.envs.spec"):
        register_all()
    assert "stepgym_plugin/ViaEntryPoint-v0" in gym.registry
    assert env_spec("stepgym_plugin/ViaEntryPoint-v0").domain is None
    assert "skipping the stepgym environment plugin broken" in caplog.text


def test_a_declaration_that_is_not_literal_is_imported_instead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = plugin(tmp_path, monkeypatch, "Computed")
    declared = read_declaration(module)
    assert declared is not None and declared.id == "stepgym_plugin/Computed-v0"
    assert module in sys.modules and "stepgym_plugin/Computed-v0" in gym.registry


def test_mistakes_name_their_fix() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'stepgym/ThreeBody-v0'"):
        env_spec("stepgym/ThreeBdy-v0")
    reasons = EndReasons(terminal=frozenset({"done"}))
    with pytest.raises(ConfigError, match="already registered"):
        register_env(EnvSpec("stepgym/ThreeBody-v0", "elsewhere:Env", reasons))
    with pytest.raises(ConfigError, match="'module:attribute'"):
        EnvSpec("mine/Env-v0", "no_colon", reasons)
    with pytest.raises(ConfigError, match="both terminal and truncation"):
        EndReasons(terminal=frozenset({"x"}), truncation=frozenset({"x"}))
    with pytest.raises(ConfigError, match="add them to terminal or truncation"):
        EndReasons(terminal=frozenset({"x"}), failure=frozenset({"y"}))


def test_a_domain_without_a_failure_rule_fails_on_the_declared_failures() -> None:
    domain = Domain("d", final("error"), "e", final("cost"), "c")
    reasons = EndReasons(terminal=frozenset({"boom", "fine"}), failure=frozenset({"boom"}))
    bound = EnvSpec("mine/Env-v0", "m:Env", reasons, domain).domain
    assert bound is not None and bound.failed is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert bound.failed([{"termination_reason": "boom", "error": 0.1}])
        assert bound.failed([{"termination_reason": "invalid_action", "error": 0.1}])
        assert not bound.failed([{"termination_reason": "fine", "error": 0.1}])
        assert bound.failed([{"termination_reason": "fine", "error": float("nan")}])
