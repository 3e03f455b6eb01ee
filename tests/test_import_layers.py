"""Layering: ``stepgym.integrators`` imports nothing from ``stepgym.threebody``; no subpackage
imports another at call time (inside a function), and the subpackages' imports form no cycle."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import stepgym
import stepgym.integrators

INTEGRATORS_DIR = Path(stepgym.integrators.__file__).parent
PACKAGE_DIR = Path(stepgym.__file__).parent


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


def test_integrators_import_nothing_from_threebody() -> None:
    found = {hit for path in INTEGRATORS_DIR.glob("*.py") for hit in _threebody_imports(path)}
    assert found == set()


def _subpackage_imports(path: Path, package_dir: Path = PACKAGE_DIR) -> list[tuple[str, str, bool]]:
    """(importing subpackage, imported subpackage, at call time) for each import of another
    stepgym subpackage in ``path`` (a module of a subpackage of ``package_dir``)."""
    source = path.relative_to(package_dir).parts[0]
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            names: list[str] = []
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                names = [child.module] + [f"{child.module}.{a.name}" for a in child.names]
            elif isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            targets = {name.split(".")[1] for name in names if name.startswith("stepgym.")}
            for target in sorted(targets):
                if target != source and (package_dir / target / "__init__.py").exists():
                    found.append((source, target, in_function))
            visit(child, inner)

    visit(ast.parse(path.read_text()), False)
    return found


def _all_subpackage_imports(package_dir: Path = PACKAGE_DIR) -> list[tuple[str, str, bool]]:
    return [
        hit
        for path in sorted(package_dir.glob("*/*.py"))
        if (path.parent / "__init__.py").exists()
        for hit in _subpackage_imports(path, package_dir)
    ]


def _cycle(imports: list[tuple[str, str, bool]]) -> list[str]:
    """A cycle in the subpackage graph (every import, module-level or not), or []."""
    graph: dict[str, set[str]] = {}
    for source, target, _ in imports:
        graph.setdefault(source, set()).add(target)
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str]:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return []
        for target in sorted(graph.get(node, ())):
            if cycle := visit(target, [*path, node]):
                return cycle
        done.add(node)
        return []

    for node in sorted(graph):
        if cycle := visit(node, []):
            return cycle
    return []


def test_no_subpackage_imports_another_at_call_time() -> None:
    assert [(a, b) for a, b, late in _all_subpackage_imports() if late] == []


def test_the_subpackages_import_each_other_without_a_cycle() -> None:
    imports = _all_subpackage_imports()
    assert ("threebody", "integrators", False) in imports  # the scan sees the real imports
    assert _cycle(imports) == []


def test_the_scans_see_call_time_imports_and_cycles(tmp_path: Path) -> None:
    package = tmp_path / "stepgym"
    for name, text in (
        ("integrators", "from stepgym.threebody import physics\n"),
        ("threebody", "def f():\n    from stepgym.integrators import base\n"),
    ):
        (package / name).mkdir(parents=True)
        (package / name / "__init__.py").write_text("")
        (package / name / "mod.py").write_text(text)
    imports = _all_subpackage_imports(package)
    assert sorted(imports) == [
        ("integrators", "threebody", False),
        ("threebody", "integrators", True),
    ]
    assert _cycle(imports) in (
        ["integrators", "threebody", "integrators"],
        ["threebody", "integrators", "threebody"],
    )


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
