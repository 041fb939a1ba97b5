"""A script's config: plain data from the host, a read-only global `config` in the script, kept
across reloads and replaced by ``configure``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine_scripting import (
    ResourceLimitExceeded,
    ScriptArgumentError,
    ScriptEngine,
    ScriptError,
    ScriptManager,
    ScriptResourceLimits,
)

READER = """
function get(...)
  local v = config
  for i = 1, select('#', ...) do v = v[select(i, ...)] end
  return v
end
function count() local n = 0 for _ in pairs(config) do n = n + 1 end return n end
function lines() return #config.lines, table.concat(config.lines, '|') end
function write(key, value) config[key] = value end
function write_nested() config.nested.k = 0 end
function meta() return getmetatable(config), pcall(setmetatable, config, {}) end
"""


@pytest.fixture
def manager(engine: ScriptEngine) -> Iterator[ScriptManager]:
    with ScriptManager(engine) as manager:
        yield manager


def _call(manager: ScriptManager, name: str, function: str, *args: object) -> object:
    record = manager.running(name)
    assert record is not None
    return record.context.call(function, *args)


def test_config_is_a_read_only_global(manager: ScriptManager) -> None:
    manager.load("npc", READER, config={"speed": 2.5, "lines": ["hi", "bye"],
                                        "nested": {"k": 1}})
    assert _call(manager, "npc", "get", "speed") == 2.5
    assert _call(manager, "npc", "get", "nested", "k") == 1
    assert _call(manager, "npc", "count") == 3
    assert _call(manager, "npc", "lines") == (2, "hi|bye")
    with pytest.raises(ScriptError, match="config is read-only"):
        _call(manager, "npc", "write", "speed", 99)
    with pytest.raises(ScriptError, match="config is read-only"):
        _call(manager, "npc", "write_nested")
    assert _call(manager, "npc", "get", "speed") == 2.5
    assert _call(manager, "npc", "meta") == ("config", False, "cannot change a protected metatable")
    assert manager.config("npc") == {"speed": 2.5, "lines": ["hi", "bye"], "nested": {"k": 1}}


def test_without_config_the_script_sees_an_empty_table(manager: ScriptManager) -> None:
    manager.load("plain", READER)
    assert _call(manager, "plain", "count") == 0
    assert _call(manager, "plain", "get", "speed") is None


def test_file_level_code_sees_the_config(manager: ScriptManager) -> None:
    manager.load("early", "SPEED = config.speed * 2", config={"speed": 4})
    record = manager.running("early")
    assert record is not None and record.context.execute("return SPEED") == 8


def test_config_survives_a_reload_and_configure_replaces_it(manager: ScriptManager,
                                                          tmp_path: Path) -> None:
    script = tmp_path / "npc.lua"
    script.write_text(READER)
    manager.load("npc", path=script, config={"speed": 1})
    script.write_text(READER + "\n-- a comment-only edit\n")
    manager.reload("npc")
    assert _call(manager, "npc", "get", "speed") == 1
    manager.configure("npc", {"speed": 7, "mood": "grumpy"})
    assert _call(manager, "npc", "get", "speed") == 7
    assert _call(manager, "npc", "get", "mood") == "grumpy"
    manager.reload("npc", READER)
    assert _call(manager, "npc", "get", "mood") == "grumpy"


@pytest.mark.parametrize("config", [[1, 2], "speed=1", {1: "x"}, {"f": print}, {"o": object()}])
def test_config_must_be_plain_data_keyed_by_strings(manager: ScriptManager,
                                                    config: object) -> None:
    with pytest.raises(ScriptArgumentError):
        manager.load("bad", "x = 1", config=config)  # type: ignore[arg-type]
    assert "bad" not in manager
    manager.load("good", READER, config={"speed": 1})
    with pytest.raises(ScriptArgumentError):
        manager.configure("good", config)  # type: ignore[arg-type]
    assert _call(manager, "good", "get", "speed") == 1   # the old config stays
    assert manager.config("good") == {"speed": 1}


def test_a_config_larger_than_the_memory_limit_fails_the_load(engine: ScriptEngine) -> None:
    small = ScriptResourceLimits(max_memory_mb=1, max_execution_time_ms=2000)
    with ScriptManager(engine) as manager:
        with pytest.raises(ResourceLimitExceeded):
            manager.load("huge", "x = 1", limits=small, config={"blob": "x" * 2_000_000})
        assert "huge" not in manager


def test_no_route_writes_the_config(manager: ScriptManager) -> None:
    # red-team finding: `pairs` handed out the hidden data table, and `rawset` wrote the view
    manager.load("npc", READER + """
function via_pairs() local _, data = pairs(config) if type(data) == 'table' then
  pcall(rawset, data, 'speed', 99) end return config.speed end
function via_rawset() return pcall(rawset, config, 'speed', 99) end
function via_table() return pcall(table.insert, config.lines, 'x') end
""", config={"speed": 1, "lines": ["a"]})
    assert _call(manager, "npc", "via_pairs") == 1
    assert _call(manager, "npc", "via_rawset") == (
        False, "bad argument #1 to 'rawset' (table is read-only)")
    ok, _message = _call(manager, "npc", "via_table")  # type: ignore[misc]
    assert ok is False
    assert _call(manager, "npc", "get", "speed") == 1
    assert _call(manager, "npc", "lines") == (1, "a")
