"""Differential harness: runs one piece of Lua in the sandbox and in plain Lua 5.4, and compares.

Provides:

- ``run_sandboxed(code)`` / ``run_plain(code)``: run ``code`` (the body of a function: it may
  ``return`` values) inside a ``pcall`` wrapper and return an :class:`Outcome`: the serialized
  results or error value (serialized inside Lua, deterministically) and the ordered lines of
  observable side effects (``print`` lines and ``log(...)`` calls; ``log`` is a local function
  the wrapper gives the code, it prints ``log: <serialized args>``).
- ``compare(code)``: both outcomes, plus the known difference they match, if any.
- ``uncaught_sandboxed(code)`` / ``uncaught_plain(code)``: the message of an error that the code
  does not catch (the sandbox side must raise ``ScriptRuntimeError`` with it).
- ``promised_globals()``: the globals a sandboxed script gets, read from a sandboxed context: the
  names in its ``_G``, and the keys of each library table.
- ``KNOWN_DIFFERENCES``: the one list of differences the sandbox has today. Each entry has a
  minimal reproduction (test_known_differences.py runs each as a strict xfail) and a signature
  that lets the property tests recognise that difference and pass over it. Remove an entry when
  its fix lands: its xfail then fails until it is removed, and the property tests start checking
  the shapes it covered.

The plain side is a ``lupa.lua54.LuaRuntime`` whose real global table is stripped down to the
promised names (library tables to the promised keys), with the runtime's original functions, and
whose ``print`` appends to a log. Both sides load the code under the same chunk name (``=CHUNK``)
so error messages line up; the wrapper keeps the code's first line on line 1. The plain side runs
under an instruction budget (a count hook) and a memory cap, so generated programs that plain Lua
would run for too long are reported as ``budget`` and left out by the property tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import lupa.lua54 as lua54

from engine_scripting import (
    ResourceLimitExceeded,
    ScriptCompileError,
    ScriptEngine,
    ScriptError,
    ScriptResourceLimits,
)

CHUNK = "difftest"
CHUNK_TOKEN = "<chunk>"
GENEROUS_LIMITS = ScriptResourceLimits(max_memory_mb=256, max_execution_time_ms=2000,
                                       max_recursion_depth=1_000_000)
PLAIN_MEMORY = 256 * 1024 * 1024
PLAIN_HOOK_COUNT = 1000
PLAIN_BUDGET_HOOKS = 20_000   # 2e7 VM instructions

# The prefix the code under test runs after, all on one line (so the code keeps its line
# numbers). It captures what it needs before the code can change anything.
_PREFIX_LUA = r"""
local __type, __next, __fmt, __mtype, __sort, __concat, __select, __getmt, __gsub, __byte,
  __print, __pcall, __tostring =
  type, next, string.format, math.type, table.sort, table.concat, select, getmetatable,
  string.gsub, string.byte, print, pcall, tostring
local function __ser(v, seen, depth)
  local t = __type(v)
  if t == "string" then
    return (__gsub(__fmt("%q", v), "[\128-\255]", function(c) return "\\" .. __byte(c) end))
  elseif t == "number" then
    if v ~= v then return "float:nan" end
    return __mtype(v) .. ":" .. __fmt("%q", v)
  elseif t == "table" then
    if seen[v] then return "<cycle>" end
    if depth > 12 then return "<deep>" end
    seen[v] = true
    local parts = {}
    for k, x in __next, v do
      parts[#parts + 1] = "[" .. __ser(k, seen, depth + 1) .. "]=" .. __ser(x, seen, depth + 1)
    end
    seen[v] = nil
    __sort(parts)
    local mark = __getmt(v) ~= nil and "@mt" or ""
    return "{" .. __concat(parts, ",") .. "}" .. mark
  elseif t == "nil" or t == "boolean" then
    return __tostring(v)
  end
  return t
end
local function __serall(...)
  local parts = {}
  for i = 1, __select("#", ...) do parts[i] = __ser((__select(i, ...)), {}, 0) end
  return __concat(parts, " ")
end
local function log(...) __print("log: " .. __serall(...)) end
local function __outcome(ok, ...)
  return (ok and "ok" or "error") .. " " .. __select("#", ...) .. ": " .. __serall(...)
end
"""
PREFIX = " ".join(line.strip() for line in _PREFIX_LUA.strip().splitlines())
assert "--" not in PREFIX


def wrap(code: str) -> str:
    """The chunk both sides run: ``code`` as a function body under pcall; returns one string."""
    return PREFIX + " return __outcome(__pcall(function(...) " + code + "\nend))"


@dataclass(frozen=True)
class Outcome:
    """What one side did: ``result`` is ``ok N: values``, ``error 1: value``, ``compile: msg``,
    ``uncaught <ErrorClass>: msg``, ``limit <type>: msg`` or ``budget``; ``output`` holds the
    print/log lines in order."""

    result: str
    output: tuple[str, ...]

    def __str__(self) -> str:
        shown = [f"  | {line}" for line in self.output[:40]]
        if len(self.output) > 40:
            shown.append(f"  | ... ({len(self.output) - 40} more lines)")
        return "\n".join([self.result, *shown])


_ADDRESS = re.compile(r"(\w+): (builtin: )?0x[0-9a-fA-F]+")


def normalize(text: str) -> str:
    """Replace the chunk name by a token and object addresses by ``ADDR``; keep line numbers."""
    return _ADDRESS.sub(r"\1: ADDR", text.replace(CHUNK, CHUNK_TOKEN))


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


# ---------------------------------------------------------------------------------------------
# The sandbox side
# ---------------------------------------------------------------------------------------------
@cache
def _engine() -> ScriptEngine:
    return ScriptEngine(limits=GENEROUS_LIMITS)


def _sandbox_call(source: str, lines: list[str]) -> str:
    ctx = _engine().create_context("differential", on_print=lines.append)
    try:
        value = ctx.execute(source, chunk_name=CHUNK)
    except ScriptCompileError as error:
        return "compile: " + error.message
    except ResourceLimitExceeded as error:
        return f"limit {error.limit_type}: {error.message}"
    except ScriptError as error:
        return f"uncaught {type(error).__name__}: {error.message}"
    finally:
        ctx.close()
    return _text(value)


def run_sandboxed(code: str) -> Outcome:
    """Run ``code`` wrapped (see ``wrap``) in a fresh sandboxed context with generous limits."""
    lines: list[str] = []
    result = _sandbox_call(wrap(code), lines)
    return Outcome(normalize(result), tuple(normalize(line) for line in lines))


def uncaught_sandboxed(code: str) -> str:
    """Run ``code`` unwrapped in the sandbox; ``uncaught ScriptRuntimeError: msg`` or another
    outcome text."""
    return normalize(_sandbox_call(code, []))


@cache
def promised_globals() -> dict[str, tuple[str, ...] | None]:
    """Name -> sorted keys for library tables, None for other values, read from a sandbox."""
    ctx = _engine().create_context("promised")
    try:
        listing = ctx.execute(
            "local out = {} "
            "for name, v in next, _G do "
            "  if type(v) == 'table' and name ~= '_G' then "
            "    local keys = {} for k in next, v do keys[#keys + 1] = k end "
            "    table.sort(keys) out[#out + 1] = name .. '=' .. table.concat(keys, ',') "
            "  else out[#out + 1] = name end "
            "end table.sort(out) return table.concat(out, ' ')"
        )
    finally:
        ctx.close()
    result: dict[str, tuple[str, ...] | None] = {}
    for item in _text(listing).split():
        name, eq, keys = item.partition("=")
        result[name] = tuple(keys.split(",")) if eq else None
    return result


# ---------------------------------------------------------------------------------------------
# The plain side
# ---------------------------------------------------------------------------------------------
_PLAIN_SETUP = r"""
local promised, budget_hooks, hook_count = ...
local load, xpcall, sethook, type, error, next, tostring, select, concat, getmetatable =
  load, xpcall, debug.sethook, type, error, next, tostring, select, table.concat, getmetatable
local G = _G
local originals = {}
for name, v in next, G do originals[name] = v end
for name in next, originals do
  if promised[name] == nil then G[name] = nil end
end
for name, keys in next, promised do
  if type(keys) == "table" then
    local lib = originals[name]
    local keep = {}
    for _, k in next, keys do keep[k] = true end
    local drop = {}
    for k in next, lib do if not keep[k] then drop[#drop + 1] = k end end
    for _, k in next, drop do lib[k] = nil end
  end
end
G._G = G
local lines = {}
G.print = function(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
  lines[#lines + 1] = concat(parts, "\t")
end
local exceeded = false
local hooks = 0
local function hook()
  hooks = hooks + 1
  if hooks > budget_hooks then
    exceeded = true
    error("plain instruction budget exceeded", 0)
  end
end
local function handler(e)
  if type(e) == "string" then return e end
  local mt = getmetatable(e)
  if mt and mt.__tostring then return tostring(e) end
  return "(error object is a " .. type(e) .. " value)"
end
return function(code, chunkname)
  lines, exceeded, hooks = {}, false, 0
  local f, err = load(code, chunkname, "t")
  if not f then return "compile", err, lines end
  sethook(hook, "", hook_count)
  local ok, value = xpcall(f, handler)
  sethook()
  if exceeded then return "budget", "", lines end
  return ok and "ok" or "error", value, lines
end
"""


def _plain_runner() -> Callable[..., Any]:
    runtime = lua54.LuaRuntime(unpack_returned_tuples=True, register_eval=False,
                               register_builtins=False, encoding=None,
                               max_memory=PLAIN_MEMORY)
    promised: dict[bytes, Any] = {}
    for name, keys in promised_globals().items():
        promised[name.encode()] = (
            runtime.table_from([k.encode() for k in keys]) if keys is not None else True
        )
    runner: Callable[..., Any] = runtime.execute(
        _PLAIN_SETUP, runtime.table_from(promised), PLAIN_BUDGET_HOOKS, PLAIN_HOOK_COUNT
    )
    return runner


def _plain_call(source: str) -> tuple[str, str, list[str]]:
    runner = _plain_runner()
    try:
        status, value, lines = runner(source.encode(), b"=" + CHUNK.encode())
    except lua54.LuaMemoryError:
        return "memory", "", []
    return _text(status), _text(value), [_text(line) for line in lines.values()]


def run_plain(code: str) -> Outcome:
    """Run ``code`` wrapped (see ``wrap``) in a fresh plain runtime with the promised globals."""
    status, value, lines = _plain_call(wrap(code))
    if status == "ok":
        result = value
    elif status == "compile":
        result = "compile: " + value
    elif status in ("budget", "memory"):
        result = status
    else:
        result = "uncaught ScriptRuntimeError: " + value
    return Outcome(normalize(result), tuple(normalize(line) for line in lines))


def uncaught_plain(code: str) -> str:
    """Run ``code`` unwrapped in plain Lua; the same texts as ``uncaught_sandboxed``."""
    status, value, _ = _plain_call(code)
    if status == "ok":
        return "ok"
    if status == "error":
        return normalize("uncaught ScriptRuntimeError: " + value)
    if status == "compile":
        return normalize("compile: " + value)
    return status


# ---------------------------------------------------------------------------------------------
# Known differences: the single list the lead edits as fixes land
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KnownDifference:
    """One difference between the sandbox and plain Lua that exists today.

    ``repro``: minimal Lua (a function body) whose outcomes differ. A difference is recognised in
    generated programs either by ``rewrites`` ((regex, replacement) pairs applied to both outcome
    texts: the difference is explained when the texts are then equal) or by the ``sandbox`` and
    ``plain`` regexes (searched in each side's outcome text; None: anything).
    """

    key: str
    group: str
    reason: str
    repro: str
    rewrites: tuple[tuple[str, str], ...] = ()
    sandbox: str | None = None
    plain: str | None = None
    code: str | None = None

    def rewrite(self, text: str) -> str:
        """``text`` with this difference's rewrites applied."""
        for pattern, replacement in self.rewrites:
            text = re.sub(pattern, replacement, text)
        return text

    def matches(self, sandbox: Outcome, plain: Outcome, code: str = "") -> bool:
        """Whether this difference's signature (regexes) explains the two outcomes."""
        if self.code is not None and not re.search(self.code, code):
            return False
        if self.rewrites:
            return self.rewrite(str(sandbox)) == self.rewrite(str(plain))
        if self.sandbox is not None and not re.search(self.sandbox, str(sandbox)):
            return False
        return self.plain is None or re.search(self.plain, str(plain)) is not None


def _k(key: str, group: str, reason: str, repro: str, **signature: Any) -> KnownDifference:
    rewrites = tuple(signature.pop("rewrites", ()))
    return KnownDifference(key, group, reason, repro, rewrites, **signature)


_TAIL_CALLS = "wrapped functions called in a tail call (docs/scripting.md)"
_ESCAPES = "closed escapes (docs/security.md)"

# THE list of differences the sandbox has today, each documented in docs/scripting.md's
# "Differences from plain Lua 5.4". Remove an entry when its fix lands.
KNOWN_DIFFERENCES: list[KnownDifference] = [
    _k("error_position_missing", _TAIL_CALLS,
       "a wrapped function (a Lua function standing for a C one) called in a tail call loses "
       "its caller's frame: its errors carry no 'chunk:line:' position",
       "return string.gsub('abc', '%w', '%2')",
       rewrites=[(r'"<chunk>:\d+: ', '"'), (r": <chunk>:\d+: ", ": ")]),
    _k("method_call_argument_number", _TAIL_CALLS,
       "a wrapped function called in a tail call cannot see how it was called: its argument "
       "errors name it by its global name and count a method's self",
       "return pcall(function() return ('x'):rep(1.5) end)",
       sandbox=r"bad argument #\d+ to '(\?|string\.\w+|table\.\w+)'",
       plain=r"bad argument #\d+ to '(rep|find|match|gmatch|gsub)'"),
    _k("binary_chunk_uncatchable", _ESCAPES,
       "load of a string starting with ESC raises an uncatchable SecurityViolation (no binary "
       "chunks); plain returns nil, 'bad binary format'",
       "return load('\\27Lua')",
       sandbox=r"binary chunks are not allowed in the sandbox"),
]


def known_difference(sandbox: Outcome, plain: Outcome,
                     code: str = "") -> KnownDifference | None:
    """The entry of KNOWN_DIFFERENCES that explains the two outcomes, if any.

    First each entry alone, then all rewriting entries together (one program may show several
    of the argument-error differences at once).
    """
    for entry in KNOWN_DIFFERENCES:
        if entry.matches(sandbox, plain, code):
            return entry
    rewriting = [entry for entry in KNOWN_DIFFERENCES if entry.rewrites and entry.code is None]
    left, right = str(sandbox), str(plain)
    for entry in rewriting:
        left, right = entry.rewrite(left), entry.rewrite(right)
    if rewriting and left == right:
        return rewriting[0]
    return None


@dataclass(frozen=True)
class Comparison:
    """Both outcomes of one program, and the known difference that explains them (if any)."""

    code: str
    sandbox: Outcome
    plain: Outcome
    known: KnownDifference | None

    @property
    def same(self) -> bool:
        """Whether both sides did the same."""
        return self.sandbox == self.plain

    def report(self) -> str:
        """A readable account of the difference, for assertion messages."""
        return (f"--- code\n{self.code}\n--- sandbox\n{self.sandbox}\n--- plain\n{self.plain}")


def compare(code: str) -> Comparison:
    """Run ``code`` on both sides."""
    sandbox, plain = run_sandboxed(code), run_plain(code)
    known = None if sandbox == plain else known_difference(sandbox, plain, code)
    return Comparison(code, sandbox, plain, known)


def assert_same(code: str) -> Comparison:
    """Assert both sides agree, or that a KNOWN_DIFFERENCES entry explains the difference.

    Programs that plain Lua could not finish within its budget are rejected (hypothesis.reject
    when called under hypothesis). Returns the comparison.
    """
    comparison = compare(code)
    if comparison.plain.result in ("budget", "memory"):
        from hypothesis import reject
        reject()
    if not comparison.same and comparison.known is None:
        raise AssertionError("sandbox and plain Lua differ\n" + comparison.report())
    return comparison


def assert_exactly_same(code: str) -> None:
    """Assert both sides agree, known difference or not (for the xfail reproductions)."""
    comparison = compare(code)
    assert comparison.same, comparison.report()


def lua_list(items: Iterable[str]) -> str:
    """Lua table constructor text of already rendered items."""
    return "{" + ", ".join(items) + "}"
