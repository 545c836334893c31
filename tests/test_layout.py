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
