"""Layering: ``stepgym.integrators`` imports nothing from ``stepgym.threebody`` at import time."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import stepgym.integrators

INTEGRATORS_DIR = Path(stepgym.integrators.__file__).parent

# Call-time imports still allowed, each named: the Python references of three per-step rules
# compute their scale with the three-body physics (rho_t, jerk and crossing timescales).
DEFERRED = {
    ("step_rules.py", "radius_scale", "stepgym.threebody.rho_t"),
    ("step_rules.py", "jerk_scale", "stepgym.threebody.timescales"),
    ("step_rules.py", "crossing_scale", "stepgym.threebody.timescales"),
}


def _threebody_imports(path: Path) -> list[tuple[str, str, str]]:
    """(file, enclosing function or '<module>', module) for each import of stepgym.threebody."""
    found = []

    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef) else scope
            names: list[str] = []
            if isinstance(child, ast.ImportFrom) and child.module:
                names = [child.module] + [f"{child.module}.{a.name}" for a in child.names]
            elif isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            for name in names:
                if name.startswith("stepgym.threebody"):
                    found.append((path.name, scope, name))
                    break
            visit(child, inner)

    visit(ast.parse(path.read_text()), "<module>")
    return found


def test_integrators_import_threebody_only_in_the_named_deferred_places() -> None:
    found = {hit for path in INTEGRATORS_DIR.glob("*.py") for hit in _threebody_imports(path)}
    assert found == DEFERRED


def test_the_scan_sees_module_level_imports(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("from stepgym.threebody.physics import Body\nfrom stepgym import threebody\n")
    assert _threebody_imports(module) == [
        ("bad.py", "<module>", "stepgym.threebody.physics"),
        ("bad.py", "<module>", "stepgym.threebody"),
    ]


_BLOCKED_IMPORT = """
import importlib, pkgutil, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "stepgym.threebody" or name.startswith("stepgym.threebody."):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import stepgym.integrators as package
for info in pkgutil.iter_modules(package.__path__):
    importlib.import_module("stepgym.integrators." + info.name)
from stepgym.integrators.base import make_propagator
from stepgym.integrators.bodies import Body
propagator = make_propagator("yoshida4")
propagator.load([Body(1.0, (1.0, 0.0, 0.0), (0.0, 0.5, 0.0)),
                 Body(1.0, (-1.0, 0.0, 0.0), (0.0, -0.5, 0.0))])
assert propagator.advance_rule_to(0.5, 0.05).status is None
print(sorted(name for name in sys.modules if name.startswith("stepgym.threebody")))
"""


def test_every_integrators_module_imports_with_threebody_blocked() -> None:
    names = [info.name for info in pkgutil.iter_modules(stepgym.integrators.__path__)]
    assert {"bodies", "rebound_backend", "step_rules", "yoshida"} <= set(names)
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKED_IMPORT], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_physics_keeps_reexporting_body_and_particle_view() -> None:
    from stepgym.integrators.bodies import Body, ParticleView
    from stepgym.threebody import physics

    assert physics.Body is Body and physics.ParticleView is ParticleView
