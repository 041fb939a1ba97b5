"""Side-by-side timings of the C table functions and tables.lua's replacements in one runtime.

Prints the table (pytest -s shows it) and asserts only loose ratios: ordinary calls stay on the hot
path, and large sorts stay within a small factor of C.
"""

from __future__ import annotations

import lupa.lua54 as lua54

from tests.engine.lua_module import load_module

BENCH = r"""
local M = ...
local clock = os.clock
local function best(f, reps)
  local b = math.huge
  for _ = 1, 3 do
    local t0 = clock()
    for _ = 1, reps do f() end
    b = math.min(b, (clock() - t0) / reps)
  end
  return b * 1e9
end
local rows = {}
local function row(name, reps, c, lua)
  rows[#rows + 1] = {name, best(c, reps), best(lua, reps)}
end
local function sorter(sort, make)
  return function() sort(make()) end
end
local function numbers(n)
  return function() local t = {} for i = 1, n do t[i] = (i * 7919) % 1000003 + 0.5 end return t end
end
local function strings(n)
  return function()
    local t = {} for i = 1, n do t[i] = tostring((i * 7919) % 100003) end return t
  end
end
local base = numbers(1000)
row("build 1k numbers (baseline)", 200, function() base() end, function() base() end)
row("sort 1k numbers", 200, sorter(table.sort, numbers(1000)),
    sorter(M["table.sort"], numbers(1000)))
row("sort 100k numbers", 3, sorter(table.sort, numbers(100000)),
    sorter(M["table.sort"], numbers(100000)))
row("sort 1k strings", 200, sorter(table.sort, strings(1000)),
    sorter(M["table.sort"], strings(1000)))
local t = {} for i = 1, 100 do t[i] = i end
local ci, li = table.insert, M["table.insert"]
local cr, lr = table.remove, M["table.remove"]
row("insert+remove at end (100)", 200000, function() ci(t, 1) cr(t) end,
    function() li(t, 1) lr(t) end)
row("insert+remove at 1 (100)", 100000, function() ci(t, 1, 1) cr(t, 1) end,
    function() li(t, 1, 1) lr(t, 1) end)
local cc, lc = table.concat, M["table.concat"]
local s = {"a", "b", "c", "d", "e"}
row("concat 5 strings", 200000, function() cc(s, ",") end, function() lc(s, ",") end)
local cu, lu = table.unpack, M["table.unpack"]
row("unpack 5", 200000, function() cu(s) end, function() lu(s) end)
row("unpack 100", 2000, function() cu(t, 1, 100) end, function() lu(t, 1, 100) end)
local cm, lm = table.move, M["table.move"]
local dst = {}
row("move 5 elements", 200000, function() cm(s, 1, 5, 1, dst) end,
    function() lm(s, 1, 5, 1, dst) end)
local cs, ls = string.rep, M["string.rep"]
row("string.rep('ab', 10)", 200000, function() cs("ab", 10) end, function() ls("ab", 10) end)
local out = {string.format("%-28s %12s %12s %7s", "ns per call", "C", "replacement", "ratio")}
local ratios = {}
for _, r in ipairs(rows) do
  out[#out + 1] = string.format("%-28s %12.0f %12.0f %7.2f", r[1], r[2], r[3], r[3] / r[2])
  ratios[r[1]] = r[3] / r[2]
end
return table.concat(out, "\n"), ratios
"""


def test_timings() -> None:
    runtime = lua54.LuaRuntime(encoding="latin-1", register_eval=False)
    module = load_module(runtime, "tables.lua")
    report, ratios = runtime.execute(BENCH, module)
    print("\n" + report)  # noqa: T201 - the timing table is this test's report
    assert ratios["sort 100k numbers"] < 6.0
    assert ratios["sort 1k numbers"] < 3.0
    assert ratios["insert+remove at end (100)"] < 6.0
