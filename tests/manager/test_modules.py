"""Shared code: modules the host registers, which scripts `require`; each script state runs its
own copy, once, and follows new versions of the module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine_scripting import (
    ScriptEngine,
    ScriptError,
    ScriptManager,
    ScriptRuntimeError,
    SecurityViolation,
)

VEC = """
local M = {}
LOADS = (LOADS or 0) + 1          -- runs in the requiring script's environment
function M.add(a, b) return {x = a.x + b.x, y = a.y + b.y} end
M.version = 1
return M
"""


@pytest.fixture
def manager(engine: ScriptEngine) -> Iterator[ScriptManager]:
    with ScriptManager(engine) as manager:
        yield manager


def _run(manager: ScriptManager, name: str, code: str) -> object:
    record = manager.running(name)
    assert record is not None
    return record.context.execute(code)


def test_require_runs_a_registered_module_once_per_script(manager: ScriptManager) -> None:
    manager.register_module("vec", VEC)
    manager.load("a", "local vec = require('vec')\nSUM = vec.add({x=1,y=2},{x=3,y=4}).x")
    manager.load("b", "local vec = require 'vec'\nsame = require('vec') == vec")
    assert _run(manager, "a", "return SUM, LOADS") == (4, 1)
    assert _run(manager, "b", "return same, LOADS") == (True, 1)
    # each script state has its own copy: changing one does not touch the other
    _run(manager, "a", "require('vec').version = 99")
    assert _run(manager, "b", "return require('vec').version") == 1


def test_unknown_modules_and_bad_names_are_clear_errors(manager: ScriptManager) -> None:
    with pytest.raises(ScriptRuntimeError, match="module 'nowhere' not found"):
        manager.load("x", "require('nowhere')")
    manager.load("y", "function try(n) return pcall(require, n) end")
    record = manager.running("y")
    assert record is not None
    assert record.context.call("try", "nowhere") == (False, "module 'nowhere' not found")
    ok, message = record.context.call("try", {})  # type: ignore[misc]
    assert ok is False and "bad argument #1 to 'require' (string expected, got table)" in message
    for bad in ("", "../etc/passwd", "a b", 3):
        with pytest.raises(ScriptError, match="module name"):
            manager.register_module(bad, "return 1")  # type: ignore[arg-type]
    with pytest.raises(ScriptError, match="binary"):
        manager.register_module("bin", b"\x1bLua")


def test_a_module_that_fails_can_be_required_again(manager: ScriptManager) -> None:
    manager.register_module("flaky", "FAILS = (FAILS or 0) + 1\nif FAILS < 2 then error('boom') end"
                                     "\nreturn 'ready'")
    manager.load("s", "first = {pcall(require, 'flaky')}\nsecond = require('flaky')")
    assert _run(manager, "s", "return first[1], second, FAILS") == (False, "ready", 2)


def test_a_module_that_requires_itself_is_an_error(manager: ScriptManager) -> None:
    manager.register_module("loop", "return require('loop')")
    with pytest.raises(ScriptRuntimeError, match="requires itself"):
        manager.load("s", "require('loop')")


def test_modules_run_inside_the_sandbox(manager: ScriptManager) -> None:
    manager.register_module("sneaky", "return {os = os, io = io, dump = string.dump}")
    manager.load("s", "m = require('sneaky')")
    assert _run(manager, "s", "return m.os, m.io, m.dump") == (None, None, None)
    manager.register_module("loader", "return load(string.char(27) .. 'Lua')")
    with pytest.raises(SecurityViolation):
        manager.load("t", "require('loader')")


def test_a_new_module_version_reloads_the_scripts_that_use_it(manager: ScriptManager,
                                                             tmp_path: Path) -> None:
    manager.register_module("vec", VEC)
    script = tmp_path / "user.lua"
    script.write_text("V = require('vec').version")
    manager.load("from_file", path=script)
    manager.load("from_text", "V = require('vec').version")
    manager.load("bystander", "V = 0")
    reloaded = manager.register_module("vec", VEC.replace("M.version = 1", "M.version = 2"))
    assert reloaded == ("from_file", "from_text")
    assert _run(manager, "from_file", "return V") == 2
    assert _run(manager, "from_text", "return V") == 2
    assert manager.status("bystander").version == 1


def test_a_reload_runs_the_module_again_in_the_new_environment(manager: ScriptManager) -> None:
    manager.register_module("counter", "COUNTED = (COUNTED or 0) + 1 return COUNTED")
    manager.load("s", "N = require('counter')")
    manager.reload("s", "N = require('counter')")
    assert _run(manager, "s", "return N") == 1   # a fresh environment: its own first run
