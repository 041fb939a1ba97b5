"""Tracebacks hold only the script's own frames: nothing of the sandbox's or the world API's
chunks (which carry no debug information and would read `?`), and no tail-call markers."""

from __future__ import annotations

import re

import esper

from engine_scripting import ScriptContext, ScriptManager, ScriptRuntimeError, ScriptSystem
from tests.ecs.conftest import Loader

SOURCE = """
local function explode(s) error("bad " .. s) end
local function via_gsub(s) return (string.gsub(s, "%w+", explode)) end
function on_update(self, dt)
  local ok = pcall(function() return 1 end)
  via_gsub("x")
end
"""
# a script's frame, or a named C function (one the sandbox stands in for included)
_OWN_FRAME = re.compile(r"^\t(?:tracer:\d+: in .+|\[C\]: in (?:function|global|method|field) "
                        r"'[^'?]+')$")


def _frames(traceback: str | None) -> list[str]:
    assert traceback is not None and traceback.startswith("stack traceback:")
    return traceback.split("\n")[1:]


def test_a_callback_error_shows_only_the_scripts_frames(spawn_scripted: Loader,
                                                       manager: ScriptManager,
                                                       system: ScriptSystem) -> None:
    spawn_scripted("tracer", SOURCE)
    esper.process(0.016)
    error = manager.status("tracer").last_error
    assert isinstance(error, ScriptRuntimeError) and error.line == 2
    frames = _frames(error.traceback)
    assert [f for f in frames if not _OWN_FRAME.match(f)] == [], frames
    assert any("'string.gsub'" in f for f in frames), frames
    assert any("tracer:6:" in f for f in frames), frames     # on_update's call of via_gsub


def test_a_direct_call_error_shows_only_the_scripts_frames(ctx: ScriptContext) -> None:
    ctx.execute("local function inner() error('deep') end\nfunction outer() inner() end")
    try:
        ctx.call("outer")
    except ScriptRuntimeError as error:
        frames = _frames(error.traceback)
    else:
        raise AssertionError("no error")
    assert all("?" not in frame and "tail calls" not in frame for frame in frames), frames
    assert any(":1: in" in frame for frame in frames), frames
