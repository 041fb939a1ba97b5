"""The sandbox's policy (engine/_policy.py) is what scripts get, and what the docs say they get."""

from __future__ import annotations

import re
from pathlib import Path

import lupa.lua54
import pytest

from engine_scripting import ScriptContext, ScriptEngine
from engine_scripting.engine import _engine
from engine_scripting.engine._policy import (
    GLOBALS,
    LIBRARIES,
    SELF,
    Allowance,
    global_names,
    lua_layout,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "scripting.md"
DOC_HEADER = "| table | as in Lua 5.4 | the sandbox's own version |"
STRING = LIBRARIES["string"]

# Each global -> its type, or for a table the sorted names of its fields
ENVIRONMENT = """
    local out = {}
    for name, value in pairs(_G) do
      if type(value) == "table" and value ~= _G then
        local fields = {}
        for field in pairs(value) do fields[#fields + 1] = field end
        table.sort(fields)
        out[name] = table.concat(fields, " ")
      else
        out[name] = type(value)
      end
    end
    return out"""


def differences(what: str, found: set[str], listed: frozenset[str], where: str) -> list[str]:
    problems = []
    if found - listed:
        problems.append(f"{what}: {sorted(found - listed)} in {where}, not in the policy")
    if listed - found:
        problems.append(f"{what}: {sorted(listed - found)} in the policy, not in {where}")
    return problems


def environment_problems(context: ScriptContext) -> list[str]:
    environment = context.execute(ENVIRONMENT)
    assert isinstance(environment, dict)
    problems = differences("globals", set(environment), global_names(), "the context")
    for library, allowance in LIBRARIES.items():
        fields = set(str(environment.get(library, "")).split())
        problems += differences(library, fields, allowance.names, "the context")
    return problems


def test_each_name_is_either_plain_or_guarded() -> None:
    for table, allowance in (("globals", GLOBALS), *LIBRARIES.items()):
        assert not allowance.plain & allowance.guarded, table


def test_a_context_holds_exactly_the_policy(ctx: ScriptContext) -> None:
    assert environment_problems(ctx) == []


def test_a_reloaded_environment_holds_exactly_the_policy(ctx: ScriptContext) -> None:
    ctx.stage("local unused = 1")
    assert environment_problems(ctx) == []


def test_the_sandbox_takes_its_names_from_the_policy(
    engine: ScriptEngine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    fewer = {**LIBRARIES, "string": Allowance(STRING.plain - {"reverse"}, STRING.guarded)}
    monkeypatch.setattr(_engine, "LUA_POLICY", lua_layout(GLOBALS, fewer))
    context = engine.create_context("fewer")
    try:
        assert context.execute("return string.reverse, ('x').reverse, string.upper('a')") == (
            None, None, "A")
    finally:
        context.close()


@pytest.mark.parametrize(("string", "message"), [
    (Allowance(STRING.plain | {"nosuch"}, STRING.guarded),
     "no value for 'string.nosuch' (this Lua has none)"),
    (Allowance(STRING.plain, STRING.guarded | {"nosuch"}),
     "no value for 'string.nosuch' (the sandbox has no version of it)"),
    (Allowance(STRING.plain | {"find"}, STRING.guarded - {"find"}),
     "the sandbox's own 'string.find' is not listed as guarded"),
])
def test_set_up_refuses_a_policy_the_sandbox_cannot_keep(
    engine: ScriptEngine, monkeypatch: pytest.MonkeyPatch, string: Allowance, message: str,
) -> None:
    policy = lua_layout(GLOBALS, {**LIBRARIES, "string": string})
    monkeypatch.setattr(_engine, "LUA_POLICY", policy)
    with pytest.raises(lupa.lua54.LuaError, match=re.escape(message)):
        engine.create_context("refused")


def doc_table() -> dict[str, tuple[set[str], set[str]]]:
    """docs/scripting.md's table of what scripts get: table -> (plain names, guarded names)."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    assert DOC_HEADER in lines, f"docs/scripting.md has no table headed {DOC_HEADER!r}"
    rows: dict[str, tuple[set[str], set[str]]] = {}
    for line in lines[lines.index(DOC_HEADER) + 2:]:
        if not line.startswith("|"):
            break
        table, plain, guarded = (re.findall(r"`([^`]+)`", cell)
                                 for cell in line.strip().strip("|").split("|"))
        rows["globals" if not table else table[0]] = (set(plain), set(guarded))
    return rows


def test_the_docs_table_lists_exactly_the_policy() -> None:
    rows = doc_table()
    expected = {"globals": Allowance(GLOBALS.plain | {SELF}, GLOBALS.guarded), **LIBRARIES}
    problems = differences("rows", set(rows), frozenset(expected), "the doc")
    for table in sorted(set(rows) & set(expected)):
        plain, guarded = rows[table]
        problems += differences(f"{table}, as in Lua 5.4", plain, expected[table].plain,
                                "the doc")
        problems += differences(f"{table}, the sandbox's own version", guarded,
                                expected[table].guarded, "the doc")
    assert not problems, (
        "docs/scripting.md's table of what scripts get disagrees with engine/_policy.py:\n  "
        + "\n  ".join(problems))
