"""Package-wide conventions, read from the source: module boundaries and names that mean one thing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "voicecoach"
MODULES = sorted(PACKAGE.rglob("*.py"))


def _module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ``import from`` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    package = base if module.endswith("__init__") else base[:-1]
    package = package[: len(package) - node.level + 1]
    return ".".join([*package, *([node.module] if node.module else [])])


def _private_uses(path: Path, package: Path = PACKAGE) -> list[str]:
    """``from voicecoach.x import _name`` and ``x._name`` for a voicecoach module ``x`` imported here."""
    module = _module_name(path, package)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _resolve(module if path.name != "__init__.py" else module + ".__init__", node)
            if not source.startswith("voicecoach"):
                continue  # a third-party module's private names are its business (and the engines')
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__") and source != module:
                    found.append(f"{path.name}:{node.lineno}: from {source} import {alias.name}")
                else:
                    aliases[alias.asname or alias.name] = f"{source}.{alias.name}"
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.attr.startswith("_")
                and not node.attr.startswith("__") and node.value.id in aliases
                and (package.parent / (aliases[node.value.id].replace(".", "/") + ".py")).exists()):
            found.append(f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_no_module_uses_another_modules_private_names():
    """A helper another module needs is public in the module that owns it (``mix.fade``), or moves."""
    found = [use for path in MODULES for use in _private_uses(path)]
    assert found == []


def test_the_check_sees_a_private_import(tmp_path):
    package = tmp_path / "voicecoach"
    package.mkdir()
    (package / "mix.py").write_text("def _fade(): pass\n", encoding="utf-8")
    sound = package / "sound.py"
    sound.write_text("from .mix import _fade\nfrom . import mix\nmix._trim_bounds(1, 2)\n", encoding="utf-8")
    assert _private_uses(sound, package) == ["sound.py:1: from voicecoach.mix import _fade",
                                             "sound.py:3: mix._trim_bounds"]


def _sample_rates_called_rate(path: Path) -> list[str]:
    """Parameters ``rate: int`` and attributes ``x.rate = ...sample_rate``: in this package "rate" is speech speed."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.arg == "rate" and node.annotation is not None \
                and ast.unparse(node.annotation) == "int":
            found.append(f"{path.name}:{node.lineno}: parameter rate: int")
        if isinstance(node, ast.Assign) and "sample_rate" in ast.unparse(node.value):
            for target in node.targets:
                if isinstance(target, ast.Attribute) and target.attr == "rate":
                    found.append(f"{path.name}:{node.lineno}: {ast.unparse(target)} = {ast.unparse(node.value)}")
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_rate_means_speech_speed_and_sample_rates_are_called_sample_rate(path):
    assert _sample_rates_called_rate(path) == []


def test_the_rate_check_sees_a_sample_rate_called_rate(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("def trim(x, rate: int): pass\nclass P:\n    def __init__(self, b):\n"
                      "        self.rate = b.sample_rate\n", encoding="utf-8")
    assert _sample_rates_called_rate(sample) == ["m.py:1: parameter rate: int", "m.py:4: self.rate = b.sample_rate"]
