"""tables.lua's replacements behave exactly as Lua 5.4.8's C table functions and string.rep.

One plain runtime holds the C originals and the module twice: with the default C-call budget (hot
path to C when provably cheap) and with a budget of 0 (every call on the Lua path). Generated
argument shapes run through the C function and both replacements; results, error messages, the
tables' final contents and the log of metamethod calls must be identical.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lupa.lua54 as lua54
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.engine.lua_module import load_module

HARNESS = r"""
local C, M0, M1 = ...
local function ser(v, seen)
  local t = type(v)
  if t == "number" then return math.type(v) .. ":" .. string.format("%.17g", v) end
  if t == "string" then return string.format("%q", v) end
  if t == "table" then
    if seen[v] then return "<" .. seen[v] .. ">" end
    seen.n = seen.n + 1
    seen[v] = seen.n
    local keys = {}
    for k in next, v do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    local parts = {}
    for _, k in ipairs(keys) do
      parts[#parts + 1] = ser(k, seen) .. "=" .. ser(rawget(v, k), seen)
    end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return t
end
local function outcome(f, make)
  local log = {}
  local args = table.pack(make(log))
  local res = table.pack(pcall(function()
    local r = table.pack(f(table.unpack(args, 1, args.n)))
    return r
  end))
  local seen = {n = 0}
  local shown = ser(args, seen)
  local out = res[1] and ser(res[2], seen) or ("error " .. ser(res[2], seen))
  return out .. "\n" .. table.concat(log, " ") .. "\n" .. shown
end
return function(name, src)
  local make = assert(load(src, "=case"))()
  local c = outcome(C[name], make)
  return c, outcome(M0[name], make), outcome(M1[name], make)
end
"""


@pytest.fixture(scope="module")
def compare() -> Iterator[Any]:
    runtime = lua54.LuaRuntime(encoding="latin-1", register_eval=False)
    modules = [load_module(runtime, "tables.lua", c_call_ns=ns) for ns in (0.0, 25e6)]
    originals = runtime.execute(
        "return {['table.move'] = table.move, ['table.insert'] = table.insert, "
        "['table.remove'] = table.remove, ['table.sort'] = table.sort, "
        "['table.concat'] = table.concat, ['table.unpack'] = table.unpack, "
        "['string.rep'] = string.rep}"
    )
    yield runtime.execute(HARNESS, originals, *modules)


def check(compare: Any, name: str, src: str) -> None:
    c_out, lua_out, hot_out = compare(name, src)
    assert lua_out == c_out, src
    assert hot_out == c_out, src


# ---------------------------------------------------------------------------------------------
# argument shapes, as Lua expressions
# ---------------------------------------------------------------------------------------------
POSITIONS = st.sampled_from(
    [
        "0",
        "1",
        "2",
        "3",
        "4",
        "5",
        "7",
        "-1",
        "-3",
        "2.0",
        "2.5",
        "'2'",
        "' 0x3 '",
        "'1e0'",
        "'x'",
        "nil",
        "math.maxinteger",
        "math.mininteger",
        "math.maxinteger - 1",
        "2^53",
        "0/0",
        "{}",
        "true",
    ]
)
VALUES = st.sampled_from(
    [
        "1",
        "2",
        "3",
        "1.0",
        "-0.0",
        "2.5",
        "'a'",
        "'b'",
        "'10'",
        "'a\\0b'",
        "nil",
        "{}",
        "false",
    ]
)
LENGTHS = st.sampled_from(
    [
        "0",
        "1",
        "2",
        "3",
        "5",
        "-1",
        "3.0",
        "1.5",
        "'2'",
        "' 0x3 '",
        "'x'",
        "nil",
        "{}",
    ]
)
INDEX = st.sampled_from(["none", "fn", "table", "rawget", "error"])
NEWINDEX = st.sampled_from(["none", "fn", "table", "rawset", "error"])


@st.composite
def containers(draw: st.DrawFn, need_len: bool = True) -> str:
    """A Lua expression (inside make(log)) for a table, possibly with logging metamethods."""
    items = draw(st.lists(VALUES, max_size=6))
    body = ", ".join(f"[{i + 1}] = {v}" for i, v in enumerate(items))
    kind = draw(st.sampled_from(["plain", "plain", "meta", "userdata-like"]))
    if kind == "plain":
        return "{" + body + "}"
    index, newindex = draw(INDEX), draw(NEWINDEX)
    fields = []
    if index == "fn":
        fields.append(
            "__index = function(t, k) log[#log + 1] = 'i' .. tostring(k) "
            "return rawget(store, k) end"
        )
    elif index == "table":
        fields.append("__index = store")
    elif index == "rawget":
        fields.append("__index = rawget")
    elif index == "error":
        bad = draw(st.integers(0, 4))
        fields.append(
            f"__index = function(t, k) log[#log + 1] = 'i' .. tostring(k) "
            f"if k == {bad} then error('boom' .. k) end return rawget(store, k) end"
        )
    if newindex == "fn":
        fields.append(
            "__newindex = function(t, k, v) log[#log + 1] = 'n' .. tostring(k) .. "
            "'=' .. (type(v) == 'table' and 'table' or tostring(v)) rawset(store, k, v) end"
        )
    elif newindex == "table":
        fields.append("__newindex = store")
    elif newindex == "rawset":
        fields.append("__newindex = rawset")
    elif newindex == "error":
        fields.append(
            "__newindex = function(t, k, v) log[#log + 1] = 'n' .. tostring(k) "
            "error({'obj', k}) end"
        )
    if need_len or draw(st.booleans()):
        length = draw(LENGTHS)
        fields.append(f"__len = function() log[#log + 1] = 'l' return {length} end")
    if draw(st.booleans()):
        fields.append("__eq = function() log[#log + 1] = 'eq' return true end")
    mt = "{" + ", ".join(fields) + "}"
    if kind == "userdata-like":
        # a non-table with a metatable, as checktab accepts it: a string's metatable is shared,
        # so use a table without the raw fields and put everything behind __index
        return f"setmetatable({{}}, {mt})"
    keep = draw(st.booleans())
    raw = "{" + body + "}" if keep else "{}"
    return f"(function() local store = {{{body}}} return setmetatable({raw}, {mt}) end)()"


def make(*args: str) -> str:
    """A chunk returning make(log), which builds the arguments afresh (`store` shared)."""
    return "return function(log) local store = {} return " + ", ".join(args) + " end"


def args_of(draw: st.DrawFn, *shapes: st.SearchStrategy[str]) -> list[str]:
    count = draw(st.integers(0, len(shapes)))
    return [draw(s) for s in shapes[:count]]


SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(st.data())
def test_insert(compare: Any, data: st.DataObject) -> None:
    d = data.draw
    args = [d(containers()), *args_of(d, POSITIONS, VALUES, VALUES)]
    check(compare, "table.insert", make(*args))


@SETTINGS
@given(st.data())
def test_remove(compare: Any, data: st.DataObject) -> None:
    d = data.draw
    args = [d(containers()), *args_of(d, POSITIONS)]
    # with #t == -1 every position passes C's check, and C would shift from mininteger up to -1
    if args[1:] == ["math.mininteger"] and "return -1 end" in args[0]:
        args[1] = "-3"
    check(compare, "table.remove", make(*args))


# the integers luaL_checkinteger makes of POSITIONS
INTEGERS = {
    **{str(i): i for i in (0, 1, 2, 3, 4, 5, 7, -1, -3)},
    **{"2.0": 2, "'2'": 2, "' 0x3 '": 3, "'1e0'": 1, "2^53": 2**53},
    **{"math.maxinteger": 2**63 - 1, "math.mininteger": -(2**63)},
    "math.maxinteger - 1": 2**63 - 2,
}


def long_move(first: str, last: str) -> bool:
    """Whether C's table.move would pass its checks and copy more than 1000 elements."""
    f, e = INTEGERS.get(first), INTEGERS.get(last)
    if f is None or e is None or e < f or not (f > 0 or e < 2**63 - 1 + f):
        return False
    return e - f > 1000


@SETTINGS
@given(st.data())
def test_move(compare: Any, data: st.DataObject) -> None:
    d = data.draw
    src = d(containers(need_len=False))
    rest = args_of(d, POSITIONS, POSITIONS, POSITIONS)
    # keep C from looping for long: only small ranges unless an error stops it first
    if len(rest) >= 2 and long_move(rest[0], rest[1]):
        rest[1] = rest[0]
    dest = d(st.sampled_from(["", "nil", "same", "other", "5"]))
    args = [src, *rest]
    if len(rest) == 3 and dest:
        args.append("select(1, ...)" if dest == "same" else dest)
        if dest == "other":
            args[-1] = d(containers(need_len=False))
    if dest == "same" and len(args) == 5:
        body = f"local a = {src} return a, {rest[0]}, {rest[1]}, {rest[2]}, a"
        check(compare, "table.move", f"return function(log) local store = {{}} {body} end")
    else:
        check(compare, "table.move", make(*args))


@SETTINGS
@given(st.data())
def test_concat(compare: Any, data: st.DataObject) -> None:
    d = data.draw
    seps = st.sampled_from(["','", "''", "1", "nil", "{}", "'\\0'"])
    args = [d(containers()), *args_of(d, seps, POSITIONS, POSITIONS)]
    check(compare, "table.concat", make(*args))


@SETTINGS
@given(st.data())
def test_unpack(compare: Any, data: st.DataObject) -> None:
    d = data.draw
    target = d(
        st.one_of(containers(need_len=False), st.sampled_from(["'abc'", "5", "nil", "true"]))
    )
    args = [target, *args_of(d, POSITIONS, POSITIONS)]
    check(compare, "table.unpack", make(*args))


COMPARATORS = st.sampled_from(
    [
        "nil",
        "function(a, b) log[#log + 1] = 'c' return a < b end",
        "function(a, b) return a > b end",
        "function(a, b) return true end",
        "function(a, b) return false end",
        "function(a, b) return a <= b end",
        "function(a, b) if a == 3 then error('cmp' .. a, 2) end return a < b end",
        "math.ult",
        "rawequal",
        "math.max",
        "5",
        "{}",
    ]
)
ELEMENTS = st.sampled_from(["1", "2", "3", "2.0", "-0.0", "0", "0/0", "7", "3"])
STRINGS = st.sampled_from(["'a'", "'b'", "'a\\0b'", "'a\\0'", "''", "'\\0'", "'ab'", "'b\\0a'"])


@SETTINGS
@given(st.data())
def test_sort(compare: Any, data: st.DataObject) -> None:
    d = data.draw
    kind = d(st.sampled_from(["numbers", "strings", "objects", "meta"]))
    size = d(st.integers(0, 14))
    if kind == "strings":
        items = [d(STRINGS) for _ in range(size)]
    elif kind == "objects":
        items = [f"O({d(st.integers(0, 5))})" for _ in range(size)]
    else:
        items = [d(ELEMENTS) for _ in range(size)]
    cmp = d(COMPARATORS)
    if kind == "objects" and cmp not in ("nil", "5", "{}", "function(a, b) return true end"):
        cmp = "function(a, b) log[#log + 1] = 'c' return a.v < b.v end"
    header = (
        "local lt = function(a, b) log[#log + 1] = 'lt' .. a.v .. b.v return a.v < b.v end "
        "local mt = {__lt = lt} local function O(v) return setmetatable({v = v}, mt) end "
    )
    table = "{" + ", ".join(items) + "}"
    if kind == "meta":
        table = (
            "setmetatable({}, {__index = function(t, k) log[#log + 1] = 'i' .. k "
            "return rawget(store, k) end, __newindex = function(t, k, v) "
            "log[#log + 1] = 'n' .. k rawset(store, k, v) end, "
            f"__len = function() return {size} end}})"
        )
        header += "store = " + "{" + ", ".join(items) + "} "
    args = [table] if cmp == "nil" and d(st.booleans()) else [table, cmp]
    src = "return function(log) local store " + header + "return " + ", ".join(args) + " end"
    check(compare, "table.sort", src)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_rep(compare: Any, data: st.DataObject) -> None:
    d = data.draw
    strings = st.sampled_from(["''", "'ab'", "'\\0'", "3", "nil", "{}", "1.5"])
    counts = st.sampled_from(
        [
            "0",
            "-1",
            "3",
            "'2'",
            "2.0",
            "2.5",
            "nil",
            "1e15",
            "2^31",
            "math.maxinteger",
            "math.mininteger",
            "'x'",
            "{}",
        ]
    )
    args = args_of(d, strings, counts, strings)
    empty = all(a in ("''", "nil") for a in args[:1] + args[2:])
    if empty and len(args) >= 2 and args[1] in ("1e15", "2^31", "math.maxinteger"):
        args[1] = "1e5"  # C would loop for nothing; test_table_guards_hang covers it
    check(compare, "string.rep", make(*args))


def test_large_sorts_match_c(compare: Any) -> None:
    """Above the C-call budget the sort partitions in Lua and hands cheap ranges to C; with
    distinct keys (no ties) every quicksort gives the same result."""
    for expr in (
        "(i * 7919) % 100003",
        "-i",
        "i % 2 == 0 and i or -i",
        "tostring((i * 31) % 5003) .. ('x'):rep(i % 7)",
    ):
        src = (
            "return function(log) local t = {} for i = 1, 5000 do t[i] = "
            + expr
            + " end local seen, u = {}, {} for _, v in ipairs(t) do if not seen[v] then "
            "seen[v] = true u[#u + 1] = v end end return u end"
        )
        check(compare, "table.sort", src)


def test_small_sorts_equal_c_permutation_with_ties(compare: Any) -> None:
    """Up to RANLIMIT elements C's quicksort is deterministic: same permutation of ties."""
    src = (
        "return function(log) local t = {} for i = 1, 100 do "
        "t[i] = (i % 3 == 0) and (i % 5) + 0.0 or (i % 5) end return t end"
    )
    check(compare, "table.sort", src)
    src = (
        "return function(log) local t = {} for i = 1, 100 do t[i] = {k = i % 4, i = i} end "
        "return t, function(a, b) return a.k < b.k end end"
    )
    check(compare, "table.sort", src)


def test_large_sorts_with_ties_match_c(compare: Any) -> None:
    """Numbers and strings above the C-call budget are partitioned in Lua exactly as C's auxsort
    does (ties between 1 and 1.0, or 0.0 and -0.0, land where C puts them) while no partition is
    imbalanced enough to randomize the pivot."""
    for expr in (
        "(i * 7919) % 61",
        "(i % 3 == 0) and ((i * 7919) % 97) + 0.0 or (i * 7919) % 97",
        "(i % 2 == 0) and 0.0 or -0.0",
        "tostring((i * 7919) % 89)",
        "tostring((i * 31) % 5003)",
    ):
        for n in (1000, 6000):
            src = (
                f"return function(log) local t = {{}} for i = 1, {n} do t[i] = {expr} end "
                "return t end"
            )
            check(compare, "table.sort", src)


def test_large_sorts_of_odd_values_match_c(compare: Any) -> None:
    """Numeric strings are strings; mixed numbers and strings raise C's message; long strings
    take the piecewise comparison."""
    for body in (
        "t[i] = tostring((i * 7919) % 100003)",
        "t[i] = (i == 1500) and '5' or i",
        "t[i] = (i == 1500) and {} or i",
        "t[i] = ('x'):rep(3000) .. tostring((i * 7919) % 1009)",
    ):
        src = f"return function(log) local t = {{}} for i = 1, 2000 do {body} end return t end"
        check(compare, "table.sort", src)


def test_sort_cost_bounds_c_worst_case() -> None:
    """The bound on comparisons covers C's auxsort in the worst case: a partition of m elements
    makes at most m + 4 comparisons and leaves at least one element on either side."""
    runtime = lua54.LuaRuntime(encoding="latin-1", register_eval=False)
    cost = load_module(runtime, "tables.lua")["_sort_cost"]
    worst = [0, 0, 1, 3]
    for m in range(4, 1201):
        worst.append(m + 4 + max(worst[a] + worst[m - 1 - a] for a in range(1, m - 1)))
    for m in range(2, 1201):
        assert cost(m, 1.0) - cost(m, 0.0) >= worst[m], m
