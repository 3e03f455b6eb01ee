"""How an environment declares itself, and how stepgym finds the declarations.

Every environment module ``stepgym/envs/<name>.py`` ends with one declaration::

    ENV_SPEC = EnvSpec(
        id="stepgym/MyProblem-v0",
        entry_point="stepgym.envs.my_problem:MyProblemEnv",
        end_reasons=END_REASONS,  # terminal, truncation and failure reasons
        domain=MY_PROBLEM_DOMAIN,  # how evaluation and transfer score an episode
    )  # optional: max_episode_steps=..., vector_entry_point="module:function"

:func:`register_all` (run by ``import stepgym``) finds the modules of this package that declare
an ``ENV_SPEC`` and registers each id with Gymnasium. It reads the four Gymnasium fields (and
whether a domain is named) from the module's source, which is why they must be written as
literals, so that ``import stepgym`` does not import PyTorch or REBOUND; the module is imported
when its spec is first asked for (:func:`env_spec`) or when Gymnasium builds the env.

An environment outside this package registers itself with ``register_env(ENV_SPEC)`` at the
end of its module, or through the ``stepgym.envs`` entry-point group (an entry point naming an
``EnvSpec`` or a module with an ``ENV_SPEC``), which ``register_all`` loads.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import logging
import pkgutil
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any, NamedTuple

import gymnasium as gym

from stepgym.episodes import Domain, EndReasons, failed_on
from stepgym.errors import ConfigError, UnknownNameError, unknown_name_message

logger = logging.getLogger(__name__)

SPEC_NAME = "ENV_SPEC"
"""The module-level name of an environment module's declaration."""
ENTRY_POINT_GROUP = "stepgym.envs"
"""Entry-point group through which installed packages add environments."""
_LITERAL_FIELDS = ("id", "entry_point", "max_episode_steps", "vector_entry_point")


@dataclass(frozen=True)
class EnvSpec:
    """One environment's declaration: its id, how to build it, why its episodes end and how
    they are scored."""

    id: str
    """Gymnasium id, ``namespace/Name-vN``."""
    entry_point: str
    """``"module:Class"`` of the environment (a :class:`~stepgym.envs.base.StepSizeEnv`)."""
    end_reasons: EndReasons
    """Its end reasons (terminal, truncation, failure); the env class should carry the same
    object as ``end_reasons``."""
    domain: Domain | None = None
    """How evaluation and transfer score its episodes (None: it cannot be evaluated). A domain
    without a ``failed`` rule fails episodes on ``end_reasons.failure`` or a non-finite error."""
    max_episode_steps: int | None = None
    """Gymnasium's ``TimeLimit`` (None: the env ends its episodes itself)."""
    vector_entry_point: str | None = None
    """``"module:function"`` that ``gymnasium.make_vec`` uses (None: Gymnasium's own)."""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ConfigError(f"an EnvSpec id must be a non-empty string, got {self.id!r}.")
        for name in ("entry_point", "vector_entry_point"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or ":" not in value):
                raise ConfigError(
                    f"{self.id}: {name} must be a 'module:attribute' string, got {value!r}."
                )
        if self.domain is not None and self.domain.failed is None:
            rule = failed_on(self.end_reasons.failure, self.domain.error)
            object.__setattr__(self, "domain", replace(self.domain, failed=rule))

    @property
    def module(self) -> str:
        """The module that defines the environment class."""
        return self.entry_point.split(":", 1)[0]


class Declared(NamedTuple):
    """What Gymnasium needs of a declaration, read without importing its module."""

    id: str
    entry_point: str
    max_episode_steps: int | None
    vector_entry_point: str | None
    module: str
    has_domain: bool = False
    """True if the declaration names a domain (read from the source, not evaluated)."""


_SPECS: dict[str, EnvSpec] = {}
_DECLARED: dict[str, Declared] = {}


def register_env(spec: EnvSpec) -> EnvSpec:
    """Make ``spec`` known to stepgym and Gymnasium (idempotent for the same entry point)."""
    if not isinstance(spec, EnvSpec):
        raise ConfigError(f"register_env needs an EnvSpec, got {type(spec).__name__}.")
    known = _SPECS.get(spec.id) or _DECLARED.get(spec.id)
    if known is not None and known.entry_point != spec.entry_point:
        raise ConfigError(
            f"environment id {spec.id!r} is already registered for {known.entry_point}; "
            f"give {spec.entry_point} another id (e.g. a new version suffix)."
        )
    _SPECS[spec.id] = spec
    _gym_register(
        Declared(
            spec.id, spec.entry_point, spec.max_episode_steps, spec.vector_entry_point, spec.module
        )
    )
    return spec


def _gym_register(declared: Declared) -> None:
    existing = gym.registry.get(declared.id)
    if existing is not None:
        if existing.entry_point != declared.entry_point:
            raise ConfigError(
                f"Gymnasium already has {declared.id!r} for {existing.entry_point}; give "
                f"{declared.entry_point} another id."
            )
        return
    gym.register(
        id=declared.id,
        entry_point=declared.entry_point,
        max_episode_steps=declared.max_episode_steps,
        vector_entry_point=declared.vector_entry_point,
    )


def read_declaration(module: str) -> Declared | None:
    """The ``ENV_SPEC`` of ``module`` read from its source (None if it declares none).

    Falls back to importing the module when its source is unavailable or the Gymnasium fields
    are not literals.
    """
    found = importlib.util.find_spec(module)
    origin = getattr(found, "origin", None)
    if found is None or not origin or not origin.endswith(".py"):
        return _imported_declaration(module)
    with open(origin, encoding="utf-8") as handle:
        source = handle.read()
    start = source.find(f"\n{SPEC_NAME}")
    if start < 0:
        return None
    try:  # parse from the declaration on (the class above it is the costly part)
        tree = ast.parse(source[start:], origin)
    except SyntaxError:
        tree = ast.parse(source, origin)
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and target.id == SPEC_NAME and isinstance(value, ast.Call):
            fields: dict[str, Any] = {"max_episode_steps": None, "vector_entry_point": None}
            try:
                for keyword in value.keywords:
                    if keyword.arg in _LITERAL_FIELDS:
                        fields[keyword.arg] = ast.literal_eval(keyword.value)
            except ValueError:
                logger.debug("%s: non-literal EnvSpec fields; importing it", module)
                return _imported_declaration(module)
            if "id" not in fields or "entry_point" not in fields:
                return _imported_declaration(module)
            has_domain = any(
                k.arg == "domain"
                and not (isinstance(k.value, ast.Constant) and k.value.value is None)
                for k in value.keywords
            )
            return Declared(module=module, has_domain=has_domain, **fields)
    return None


def _imported_declaration(module: str) -> Declared | None:
    spec = getattr(importlib.import_module(module), SPEC_NAME, None)
    if not isinstance(spec, EnvSpec):
        return None
    register_env(spec)
    return Declared(
        spec.id,
        spec.entry_point,
        spec.max_episode_steps,
        spec.vector_entry_point,
        module,
        spec.domain is not None,
    )


def builtin_modules() -> list[str]:
    """The modules of ``stepgym.envs`` (each may declare an environment)."""
    import stepgym.envs as package

    return [
        f"{package.__name__}.{info.name}"
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_") and not info.ispkg
    ]


def register_all() -> None:
    """Register every environment declared in ``stepgym.envs`` and by installed plugins."""
    for module in builtin_modules():
        declared = read_declaration(module)
        if declared is not None and declared.id not in _SPECS:
            _DECLARED[declared.id] = declared
            _gym_register(declared)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = point.load()
            spec = getattr(loaded, SPEC_NAME, loaded)
            if not isinstance(spec, EnvSpec):
                raise ConfigError(f"it names {type(spec).__name__}, not an EnvSpec")
            register_env(spec)
        except Exception as error:  # a broken plugin must not make stepgym unimportable
            logger.warning(
                "skipping the stepgym environment plugin %s (%s): %s; fix or uninstall it.",
                point.name,
                point.value,
                error,
            )


def _load(declared: Declared) -> EnvSpec:
    module: ModuleType = importlib.import_module(declared.module)
    spec = getattr(module, SPEC_NAME, None)
    if not isinstance(spec, EnvSpec) or spec.id != declared.id:
        raise ConfigError(f"{declared.module}.{SPEC_NAME} no longer declares {declared.id!r}.")
    _SPECS[spec.id] = spec
    return spec


def env_ids() -> list[str]:
    """Ids of every declared or registered environment (no module is imported)."""
    return list(dict.fromkeys([*_DECLARED, *_SPECS]))


def declares_domain(env_id: object) -> bool:
    """True if ``env_id``'s declaration names an evaluation domain (no module is imported)."""
    if not isinstance(env_id, str):
        return False
    if env_id in _SPECS:
        return _SPECS[env_id].domain is not None
    declared = _DECLARED.get(env_id)
    return declared is not None and declared.has_domain


def find_env_spec(env_id: str) -> EnvSpec | None:
    """The spec of ``env_id`` (importing its module if needed), or None if none is declared."""
    spec = _SPECS.get(env_id)
    if spec is None and env_id in _DECLARED:
        spec = _load(_DECLARED[env_id])
    return spec


def env_spec(env_id: str) -> EnvSpec:
    """The spec of ``env_id``; an unknown id raises a "did you mean" error."""
    spec = find_env_spec(env_id)
    if spec is None:
        raise UnknownNameError(
            unknown_name_message("stepgym environment", env_id, env_ids())
            + " An environment of your own declares an EnvSpec and calls register_env(spec)."
        )
    return spec


def env_specs() -> list[EnvSpec]:
    """Every known spec (imports the environments' modules)."""
    return [spec for env_id in env_ids() if (spec := find_env_spec(env_id)) is not None]


__all__ = [
    "ENTRY_POINT_GROUP",
    "SPEC_NAME",
    "EnvSpec",
    "builtin_modules",
    "declares_domain",
    "env_ids",
    "env_spec",
    "env_specs",
    "find_env_spec",
    "register_all",
    "register_env",
]
