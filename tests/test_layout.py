"""The dependency rules of the packages, read from their import graph (ast), not from grep."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(package: str) -> list[tuple[str, str]]:
    """(module, imported module) for every import statement under ``package``, relative ones resolved."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found += [(module, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                package_name = module if path.name == "__init__.py" else module.rpartition(".")[0]
                relative = "." * node.level + (node.module or "")
                found.append((module, importlib.util.resolve_name(relative, package_name)))
    return found


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def test_the_import_walker_sees_relative_and_absolute_imports():
    edges = _imports("stream_tagger")
    assert ("stream_tagger.tagger", "stream_tagger.engines.repository") in edges
    assert len(edges) > 100


def test_stream_tagger_never_imports_trainer():
    offenders = [(module, target) for module, target in _imports("stream_tagger") if _top(target) == "trainer"]
    assert offenders == []


@pytest.mark.parametrize("package", ["stream_tagger", "video_world"])
def test_torch_stays_out_of_the_worker_and_the_world(package):
    offenders = [(module, target) for module, target in _imports(package) if _top(target) == "torch"]
    assert offenders == []


def test_production_modules_never_import_dev_tooling():
    """Only the CLI's demo command (lazily) and the testing package itself may reach stream_tagger.testing."""
    offenders = [
        (module, target)
        for module, target in _imports("stream_tagger")
        if target.startswith("stream_tagger.testing")
        and not module.startswith("stream_tagger.testing")
        and module != "stream_tagger.cli.main"
    ]
    assert offenders == []
    world = [
        (module, target)
        for module, target in _imports("stream_tagger")
        if _top(target) == "video_world" and not module.startswith("stream_tagger.testing")
    ]
    assert world == []


def _imported_names(package: str) -> list[tuple[str, str]]:
    """(module, package.name) for every ``from package import name``: the name may be a submodule."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                package_name = module if path.name == "__init__.py" else module.rpartition(".")[0]
                base = importlib.util.resolve_name("." * node.level + (node.module or ""), package_name)
                found += [(module, f"{base}.{alias.name}") for alias in node.names]
    return found


def _reachable(start_packages: list[str], root_package: str) -> dict[str, set[str]]:
    """For each module under ``start_packages``: every module it reaches through imports inside ``root_package``."""
    edges: dict[str, set[str]] = {}
    for module, target in _imports(root_package) + _imported_names(root_package):
        edges.setdefault(module, set()).add(target)
    known = set(edges)
    reached: dict[str, set[str]] = {}
    for module in known:
        if not any(module == p or module.startswith(p + ".") for p in start_packages):
            continue
        seen, todo = set(), [module]
        while todo:
            current = todo.pop()
            for target in edges.get(current, ()):
                # an import of a name inside a module (from a.b import C) reaches module a.b
                owner = next((m for m in (target, target.rpartition(".")[0]) if m in known), None)
                seen.add(target)
                if owner and owner not in seen:
                    seen.add(owner)
                    todo.append(owner)
        reached[module] = seen
    return reached


def test_the_trainers_never_reach_the_synthetic_world():
    """Label sets come from the dataset: no trainer module imports video_world, directly or through another."""
    reached = _reachable(["trainer.classifier", "trainer.timeliness", "trainer.early_action"], "trainer")
    assert len(reached) >= 15
    offenders = {module: sorted(t for t in targets if _top(t) == "video_world") for module, targets in reached.items()}
    assert {m: t for m, t in offenders.items() if t} == {}
