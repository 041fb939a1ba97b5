"""Hypothesis strategies that build small Lua programs for the differential harness.

Provides strategies of Lua source text (function bodies for ``harness.compare``):

- ``values``: argument shapes: integers (also huge), numeric strings (' 10 ', '0x10', '1e3'),
  floats (1.0, 1.5, -0.0, inf, nan), nil, strings, tables, tables with logging metamethods.
- ``call_programs``: one call of a wrapped function with generated arguments, made directly, as a
  method, through pcall, or with an argument absent instead of nil.
- ``string_programs``, ``table_programs``, ``load_programs``, ``base_programs``,
  ``coroutine_programs``: the programs of each group of wrapped functions.

Every program starts with PRELUDE, which defines ``M(list, len, fail)``: a table holding
``list`` whose metatable logs every __index, __newindex, __len and __lt call; ``len`` is what
__len returns (absent: no __len) and ``fail`` names a metamethod that raises ``E`` instead.
Sizes stay small: plain Lua runs under an instruction budget, and C loops over raw tables
(table.move over huge ranges) cannot be interrupted, so positions that would make them loop
for long are combined only where the call fails at once.
"""

from __future__ import annotations

from hypothesis import strategies as st

PRELUDE = (
    "local E "
    "local function M(list, len, fail) "
    "local store = {} for i, v in ipairs(list) do store[i] = v end "
    "local mt = {} "
    "mt.__index = function(t, k) log('index', k) if fail == 'index' then error(E) end "
    "return store[k] end "
    "mt.__newindex = function(t, k, v) log('newindex', k, v) if fail == 'newindex' then "
    "error(E) end store[k] = v end "
    "if len ~= nil then mt.__len = function(t) log('len') if fail == 'len' then error(E) end "
    "return len end end "
    "mt.__lt = function(a, b) log('lt') if fail == 'lt' then error(E) end "
    "return rawget(a, 'v') < rawget(b, 'v') end "
    "return setmetatable({}, mt), store end "
    "local function O(v) return setmetatable({v = v}, getmetatable(M({}))) end "
)

ERROR_VALUES = ["'boom'", "{code = 1}", "nil", "42", "true", "1.5",
                "setmetatable({}, {__tostring = function() return 'TS' end})"]

INTEGERS = ["0", "1", "2", "3", "-1", "-2", "5", "10", "math.maxinteger", "math.mininteger",
            "math.maxinteger - 1", "math.mininteger + 1", "2^53"]
NUMERIC_STRINGS = ["' 10 '", "'0x10'", "'1e3'", "'2'", "'1'", "'-1'", "'1.5'", "'x'", "''"]
FLOATS = ["1.0", "1.5", "-0.0", "1/0", "-1/0", "0/0", "2.0", "-1.0"]
LENGTHS = ["nil", "0", "1", "2", "3", "-1", "1.0", "1.5", "'2'", "'abc'", "0/0"]
SMALL_LISTS = ["{}", "{1}", "{1, 2, 3}", "{'a', 'b', 'c'}", "{3, 1, 2}", "{'x', 2, 'y'}",
               "{1, nil, 3}", "{{}, 1}"]

error_values = st.sampled_from(ERROR_VALUES)
integers = st.sampled_from(INTEGERS)
small_positions = st.sampled_from(["0", "1", "2", "3", "4", "-1", "5"])
scalars = st.sampled_from(INTEGERS + NUMERIC_STRINGS + FLOATS + ["nil", "true", "'abc'"])


@st.composite
def meta_tables(draw: st.DrawFn) -> str:
    """A call of M: a table with logging metamethods (maybe a failing one)."""
    items = draw(st.sampled_from(SMALL_LISTS))
    length = draw(st.sampled_from(LENGTHS))
    fail = draw(st.sampled_from(["nil", "nil", "'index'", "'newindex'", "'len'", "'lt'"]))
    return f"(M({items}, {length}, {fail}))"


tables = st.one_of(st.sampled_from(SMALL_LISTS), meta_tables())
values = st.one_of(scalars, tables, st.sampled_from(["{}", "print"]))


def _args(parts: list[str], absent: bool) -> str:
    """Argument list text; trailing nils are dropped when ``absent`` (absent vs nil)."""
    while absent and parts and parts[-1] == "nil":
        parts = parts[:-1]
    return ", ".join(parts)


@st.composite
def calls(draw: st.DrawFn, function: str, shapes: list[st.SearchStrategy[str]]) -> str:
    """A program calling ``function`` once, the way generated: direct, method, or via pcall."""
    count = draw(st.integers(0, len(shapes)))
    parts = [draw(shape) for shape in shapes[:count]]
    args = _args(parts, draw(st.booleans()))
    library, _, name = function.partition(".")
    how = draw(st.sampled_from(["direct", "pcall", "method"] if library == "string" and parts
                               else ["direct", "pcall"]))
    if how == "pcall":
        call = f"log(pcall({function}{', ' if args else ''}{args}))"
    elif how == "method":
        rest = _args(parts[1:], True)
        call = f"log(pcall(function() log((({parts[0]})):{name}({rest})) end))"
    else:
        call = f"log(pcall(function() log({function}({args})) end))"
    error = draw(error_values)
    return f"{PRELUDE} E = {error} {call}"


strings = st.sampled_from(["'hello world'", "'abc'", "''", "'a,b,,c'", "'  x  '",
                           "'aaa'", "'x=1, y=22'", "10", "1.5"])
patterns = st.sampled_from([
    "'o'", "'(o)(r)'", "'%a+'", "'^h'", "'d$'", "'[%w_]*'", "'()'", "'(%a+)=(%d+)'",
    "'%b()'", "'%f[%w]%w+'", "'('", "'%'", "'[a'", "'(()'", "'%1'", "'.-'", "'a*'",
    "'x?y'", "10", "{}", "nil", "'%g+'",
])
repls = st.sampled_from([
    "'<%0>'", "'%1'", "'%2'", "'%%'", "'%'", "'%x'", "5", "{hello = 'H', o = true}",
    "{a = {}}", "function(c) log('repl', c) return c .. c end",
    "function(c) log('repl', c) end", "function() return {} end",
    "function() error(E) end", "true", "nil",
])
inits = st.one_of(small_positions, st.sampled_from(
    ["-3", "100", "math.mininteger", "math.maxinteger", "1.0", "1.5", "'2'", "' 3 '", "nil"]))
counts = st.one_of(small_positions, st.sampled_from(["1.0", "1.5", "'2'", "-5", "nil", "0/0"]))

string_programs = st.one_of(
    calls("string.find", [strings, patterns, inits, st.sampled_from(["true", "nil", "false"])]),
    calls("string.match", [strings, patterns, inits]),
    calls("string.gsub", [strings, patterns, repls, counts]),
    calls("string.rep", [strings, counts, st.sampled_from(["','", "''", "nil", "5", "{}"])]),
    st.builds(
        lambda s, p, i, e: f"{PRELUDE} E = {e} log(pcall(function() "
                           f"for a, b in string.gmatch({s}, {p}, {i}) do log(a, b) end end))",
        strings, patterns, inits, error_values),
)

positions = st.one_of(small_positions, st.sampled_from(
    ["1.0", "1.5", "'1'", "' 2 '", "'0x1'", "math.maxinteger", "math.mininteger", "nil",
     "0/0", "-0.0"]))
move_ranges = st.sampled_from([
    "1, 3, 2", "1, 3, 1", "2, 3, 1", "1, 0, 5", "3, 1, 1", "-1, 1, 3", "0, 2, 1",
    "'1', '3', '2'", "1.0, 2.0, 3.0", "1.5, 2, 3", "1, 3, math.maxinteger",
    "math.mininteger, -1, 1", "0, math.maxinteger, 1", "1, math.maxinteger, 2",
    "math.maxinteger - 2, math.maxinteger, 1", "math.mininteger, math.mininteger + 2, 1",
    "1, 2", "1",
])
comparators = st.sampled_from([
    "nil", "function(a, b) log('cmp') return a < b end", "function(a, b) return a > b end",
    "function(a, b) error(E) end", "function() return true end", "3",
    "function(a, b) return tostring(a) < tostring(b) end",
])
sort_lists = st.one_of(tables, st.sampled_from(["{O(3), O(1), O(2)}", "{O(2), 1}"]))


@st.composite
def move_calls(draw: st.DrawFn) -> str:
    """table.move with small or failing ranges, maybe into a second table."""
    source = draw(tables)
    target = draw(st.sampled_from(["", ", {}", ", (M({}, nil, nil))", ", 5", ", nil"]))
    return (f"{PRELUDE} E = {draw(error_values)} log(pcall(function() "
            f"local r = table.move({source}, {draw(move_ranges)}{target}) "
            f"log(r) end))")


table_programs = st.one_of(
    calls("table.insert", [tables, positions, values, values]),
    calls("table.remove", [tables, positions]),
    calls("table.concat", [tables, st.sampled_from(["','", "''", "nil", "1", "{}"]),
                           positions, positions]),
    calls("table.unpack", [tables, positions, positions]),
    move_calls(),
    st.builds(lambda t, c, e: f"{PRELUDE} E = {e} local t = {t} "
                              f"log(pcall(table.sort, t, {c})) log(rawlen(t))",
              sort_lists, comparators, error_values),
    st.builds(lambda t, e: f"{PRELUDE} E = {e} local t, store = {t} "
                           f"log(pcall(table.insert, t, 'v')) log(store)",
              meta_tables(), error_values),
)

chunks = st.sampled_from([
    "'return 1 + 1'", "'return ...'", "'x = '", "'return x'", "'error(\"in chunk\")'",
    "'\\27Lua'", "''", "'return _ENV'", "'local a <const> = 1; a = 2'", "5",
    "function() return nil end", "nil",
])
readers = st.sampled_from([
    "(function() local parts = {'return ', '1 ', '+ 2'} local i = 0 "
    "return function() i = i + 1 return parts[i] end end)()",
    "(function() local i = 0 return function() i = i + 1 if i == 1 then return 'retu' "
    "elseif i == 2 then return 'rn 5' end end end)()",
    "function() error(E) end",
    "(function() local i = 0 return function() i = i + 1 if i == 1 then return {} end end end)()",
    "(function() local i = 0 return function() i = i + 1 if i == 1 then return 'return 7' end "
    "return '' end end)()",
])
chunk_names = st.sampled_from(["nil", "'=named'", "'@file.lua'", "'plain name'", "5", "{}"])
modes = st.sampled_from(["nil", "'t'", "'bt'", "'b'", "'x'", "5"])
envs = st.sampled_from(["", ", nil", ", {x = 42}", ", _ENV", ", 5",
                        ", setmetatable({}, {__index = function(_, k) log('env', k) end})"])


@st.composite
def load_programs(draw: st.DrawFn) -> str:
    """load with every argument shape, then a call of the result."""
    chunk = draw(st.one_of(chunks, readers))
    name, mode, env = draw(chunk_names), draw(modes), draw(envs)
    count = draw(st.integers(1, 4))
    args = [chunk, name, mode][:count]
    text = ", ".join(args) + (env if count >= 3 else "")
    return (f"{PRELUDE} E = {draw(error_values)} x = 'global x' "
            f"log(pcall(function() local f, err = load({text}) log(type(f), err) "
            f"if f then log(pcall(f, 'arg')) end end))")


gc_options = st.sampled_from([
    "", "'count'", "'collect'", "'step'", "'step', 0", "'step', 10", "'isrunning'", "nil",
    "'bogus'", "5", "'stop'", "'incremental'",
])


@st.composite
def base_programs(draw: st.DrawFn) -> str:
    """print, collectgarbage, pcall/xpcall with handlers, nested, errors of every type."""
    error = draw(error_values)
    kind = draw(st.sampled_from(["print", "gc", "pcall", "xpcall", "nested"]))
    if kind == "print":
        args = ", ".join(draw(st.lists(st.sampled_from(
            INTEGERS + NUMERIC_STRINGS + FLOATS + ["nil", "true", "'a\\tb'",
                                                   "setmetatable({}, {__tostring = "
                                                   "function() return 'T' end})",
                                                   "setmetatable({}, {__tostring = "
                                                   "function() return 5 end})",
                                                   "setmetatable({}, {__name = 'My'})"]),
            max_size=4)))
        return f"{PRELUDE} E = {error} log(pcall(print, {args})) print({args})"
    if kind == "gc":
        option = draw(gc_options)
        return (f"{PRELUDE} log(pcall(function() local r = collectgarbage({option}) "
                f"log(type(r)) end))")
    handler = draw(st.sampled_from([
        "function(e) log('handler', e) return 'handled' end", "function(e) error(e) end",
        "function(e) return e, 2 end", "print", "nil", "5", "error",
    ]))
    body = draw(st.sampled_from([
        "error(E)", "error(E, 0)", "error(E, 2)", "error()", "return 1, nil, 3",
        "local x = nil; return x.y", "return 1 < 'x'", "return #5",
        "(M({1}, 1, 'index')).x = 1", "return (M({1}, 1, 'index'))[1]",
        "return #M({}, 1, 'len')", "return O(1) < O(2)",
        "return select('#', pcall(error))",
    ]))
    if kind == "pcall":
        return f"{PRELUDE} E = {error} log(pcall(function(...) {body} end, 'a'))"
    if kind == "xpcall":
        return f"{PRELUDE} E = {error} log(xpcall(function(...) {body} end, {handler}, 'a'))"
    return (f"{PRELUDE} E = {error} log(pcall(pcall, function() log(xpcall(function() {body} "
            f"end, {handler})) {body} end))")


YIELD_SITES = {
    "plain": "log('got', coroutine.yield(1))",
    "pcall": "log(pcall(function() log('got', coroutine.yield(1)) error(E) end))",
    "xpcall": "log(xpcall(function() coroutine.yield(1) error(E) end, "
              "function(e) log('h', e) return e end))",
    "handler": "log(xpcall(function() error(E) end, function(e) coroutine.yield(e) return e end))",
    "index": "local t = setmetatable({}, {__index = function(_, k) return coroutine.yield(k) end})"
             " log(t.x)",
    "lt": "local mt = {__lt = function() return coroutine.yield('lt') end} "
          "log(setmetatable({}, mt) < setmetatable({}, mt))",
    "sort": "local t = {3, 1, 2} table.sort(t, function(a, b) coroutine.yield('cmp') "
            "return a < b end) log(t)",
    "sort_lt": "local t = {O(3), O(1)} getmetatable(t[1]).__lt = function(a, b) "
               "coroutine.yield('lt') return rawget(a, 'v') < rawget(b, 'v') end "
               "table.sort(t) log(t)",
    "gsub": "log(string.gsub('ab', '%w', function(c) coroutine.yield(c) return c end))",
    "gsub_table": "log(string.gsub('ab', '%w', setmetatable({}, {__index = "
                  "function(_, c) coroutine.yield(c) end})))",
    "concat": "local t = setmetatable({}, {__index = function(_, k) coroutine.yield(k) "
              "return 'v' end, __len = function() return 2 end}) log(table.concat(t))",
    "insert": "local t = setmetatable({}, {__newindex = function(t, k, v) coroutine.yield(k) "
              "rawset(t, k, v) end}) table.insert(t, 'v') log(rawget(t, 1))",
    "insert_len": "local t = setmetatable({}, {__len = function() coroutine.yield('len') "
                  "return 0 end}) table.insert(t, 'v') log(rawget(t, 1))",
    "unpack": "local t = setmetatable({}, {__index = function(_, k) return coroutine.yield(k) "
              "end}) log(table.unpack(t, 1, 2))",
    "load_reader": "log(load(function() coroutine.yield('r') end))",
    "tostring": "log(tostring(setmetatable({}, {__tostring = function() "
                "return coroutine.yield('ts') end})))",
    "pairs": "for k in pairs(setmetatable({}, {__pairs = function() coroutine.yield('p') "
             "return next, {} end})) do end log('pairs done')",
}


@st.composite
def coroutine_programs(draw: st.DrawFn) -> str:
    """A coroutine that yields from one site, driven by resume or wrap, then inspected."""
    site = YIELD_SITES[draw(st.sampled_from(sorted(YIELD_SITES)))]
    error = draw(error_values)
    ending = draw(st.sampled_from(["return 'done'", "error(E)", "return coroutine.running()",
                                   "return coroutine.isyieldable()"]))
    body = f"function(...) log('start', ...) {site} {ending} end"
    if draw(st.booleans()):
        driver = (f"local co = coroutine.create({body}) "
                  "for i = 1, 4 do log(coroutine.status(co), coroutine.resume(co, i)) end "
                  "log(coroutine.close(co), coroutine.status(co))")
    else:
        driver = (f"local f = coroutine.wrap({body}) "
                  "for i = 1, 3 do log(pcall(f, i)) end")
    extra = draw(st.sampled_from([
        "", "log(coroutine.isyieldable(), coroutine.running())",
        "log(pcall(coroutine.yield, 1))", "log(pcall(coroutine.resume, coroutine.running()))",
        "log(pcall(coroutine.close, coroutine.running()))", "log(pcall(coroutine.wrap, 5))",
        "log(pcall(coroutine.status, nil))",
    ]))
    return f"{PRELUDE} E = {error} {driver} {extra}"
