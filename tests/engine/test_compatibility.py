"""Ordinary Lua works unchanged inside the sandbox (tests/engine/lua/*.lua are assert files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine_scripting import ScriptContext, ScriptEngine

LUA_FILES = sorted((Path(__file__).parent / "lua").glob("*.lua"))


@pytest.mark.parametrize("path", LUA_FILES, ids=[path.stem for path in LUA_FILES])
def test_lua_file_passes_in_the_sandbox(ctx: ScriptContext, path: Path) -> None:
    assert ctx.execute(path.read_text(), chunk_name=path.name) == "ok"


@pytest.mark.parametrize("path", LUA_FILES, ids=[path.stem for path in LUA_FILES])
def test_lua_file_passes_in_a_trusted_context(path: Path) -> None:
    context = ScriptEngine(trusted=True).create_context("trusted")
    assert context.execute(path.read_text(), chunk_name=path.name) == "ok"
