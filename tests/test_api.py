"""The public API (voicecoach/__init__.py): each listed name is what its docs say, and its example runs."""

from __future__ import annotations

import ast
import doctest
import importlib
import inspect
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import voicecoach

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def documented() -> dict[str, ast.FunctionDef | None]:
    """The names listed in the package docstring: name -> its documented signature (``None``: a bare class)."""
    listing = voicecoach.__doc__.split("against this list::\n\n")[1].split("\n\n")[0]
    entries: dict[str, ast.FunctionDef | None] = {}
    for line in filter(None, (raw.strip() for raw in listing.splitlines())):
        text = line.removeprefix("class ").split(" -> ")[0]
        if "(" not in text:
            entries[text] = None
            continue
        entries[text.split("(")[0]] = ast.parse(f"def {text}: pass").body[0]
    assert entries, "the package docstring lists no names"
    return entries


def test_all_lists_exactly_the_documented_names():
    assert sorted(voicecoach.__all__) == sorted(documented())


def test_no_submodule_is_named_like_a_public_name():
    """A submodule ``voicecoach.export`` would replace the function on the package once imported."""
    submodules = {info.name for info in pkgutil.iter_modules(voicecoach.__path__)}
    assert not submodules & set(voicecoach.__all__)


def test_public_names_survive_importing_every_submodule():
    """The documented kind of each name holds after the whole package is imported (in a fresh process)."""
    program = (
        "import importlib, inspect, pkgutil, voicecoach\n"
        "import voicecoach.pipeline\n"
        "assert callable(voicecoach.export) and inspect.isfunction(voicecoach.export), voicecoach.export\n"
        "for info in pkgutil.walk_packages(voicecoach.__path__, 'voicecoach.'):\n"
        "    if info.name != 'voicecoach.__main__': importlib.import_module(info.name)\n"
        "for name in voicecoach.__all__:\n"
        "    value = getattr(voicecoach, name)\n"
        "    assert inspect.isfunction(value) or inspect.isclass(value), (name, value)\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr[-2000:]


@pytest.mark.parametrize("name", sorted(documented()))
def test_each_public_name_is_what_the_docs_say(name):
    # every submodule imported first: none may shadow the name (as voicecoach.export once did)
    for info in pkgutil.walk_packages(voicecoach.__path__, "voicecoach."):
        if info.name != "voicecoach.__main__":
            importlib.import_module(info.name)
    value = getattr(voicecoach, name)
    doc = documented()[name]
    assert inspect.isfunction(value) or inspect.isclass(value), f"voicecoach.{name} is {value!r}"
    is_class = f"class {name}" in voicecoach.__doc__
    assert inspect.isclass(value) == is_class, f"voicecoach.{name}: the docs say {'class' if is_class else 'function'}"
    assert callable(value)
    assert value.__doc__ and ">>> " in value.__doc__, f"voicecoach.{name} needs a docstring with an example"
    if doc is None:
        return
    actual = list(inspect.signature(value).parameters.values())
    args = doc.args
    said = [(a.arg, inspect.Parameter.POSITIONAL_OR_KEYWORD) for a in args.args]
    said += [(a.arg, inspect.Parameter.KEYWORD_ONLY) for a in args.kwonlyargs]
    assert [(p.name, p.kind) for p in actual] == said, f"voicecoach.{name}{inspect.signature(value)}"
    defaults = dict(zip([a.arg for a in args.args][len(args.args) - len(args.defaults):], args.defaults))
    defaults.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None})
    for parameter in actual:
        said_default = defaults.get(parameter.name)
        assert (said_default is None) == (parameter.default is inspect.Parameter.empty), parameter.name
        if isinstance(said_default, ast.Constant) and said_default.value is not ...:
            assert parameter.default == said_default.value, parameter.name


def _examples() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(recurse=False)
    tests = []
    for name in sorted(voicecoach.__all__):
        value = getattr(voicecoach, name)
        module = sys.modules[value.__module__]
        tests += [t for t in finder.find(value, name, module=module, globs=vars(module).copy()) if t.examples]
    return tests


@pytest.mark.parametrize("example", _examples(), ids=lambda t: t.name)
def test_the_examples_in_the_docstrings_run(example, tmp_path, monkeypatch):
    """Each example runs in a folder with the routines of scripts/, as a reader would try it."""
    shutil.copytree(SCRIPTS, tmp_path / "scripts")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VOICECOACH_CACHE_DIR", str(tmp_path / "cache"))
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    output: list[str] = []
    result = runner.run(example, out=output.append)
    assert result.failed == 0, "".join(output)
    assert result.attempted > 0
    if example.name == "export":  # what it wrote is a real audiobook: one chapter per step
        from voicecoach.encode import read_chapters

        assert len(read_chapters(tmp_path / "morning.m4b")) == 6 and (tmp_path / "morning.json").is_file()


def test_every_public_name_has_an_example():
    assert sorted(t.name for t in _examples()) == sorted(voicecoach.__all__)
