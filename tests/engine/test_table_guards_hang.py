"""Calls that spin for minutes or forever inside one C call end quickly through tables.lua.

Each case runs in a subprocess with a hard timeout. A count hook that raises after a few million
VM instructions stands in for the sandbox's time limit: the replacement either finishes at once
or is stopped by the hook, where the C function would never reach a VM instruction.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import lupa.lua54 as lua54
from tests.engine.lua_module import load_module
runtime = lua54.LuaRuntime(encoding="latin-1", register_eval=False)
module = load_module(runtime, "tables.lua")
run = runtime.execute('''
local M, case = ...
local f = assert(load(case, "=case", "t", setmetatable({M = M}, {__index = _G})))
debug.sethook(function() debug.sethook() error("STOP", 0) end, "", 2000000)
local t0 = os.clock()
local ok, err = pcall(f)
debug.sethook()
return (ok and "done" or tostring(err)) .. string.format(" %.3f", os.clock() - t0)
''', module, sys.argv[2])
print(run)
"""

HUGE_LEN = (
    "setmetatable({}, {__len = function() return 2^62 end, __index = rawget, __newindex = rawset})"
)
CASES = {
    "move_numeric_string_bounds": "M['table.move']({}, '1', '1e15', 1, {})",
    "move_huge_range": "M['table.move']({}, 1, math.maxinteger - 1, 2)",
    "insert_huge_len": f"M['table.insert']({HUGE_LEN}, 1, 'x')",
    "remove_huge_len": f"M['table.remove']({HUGE_LEN}, 1)",
    "concat_huge_len": "M['table.concat'](setmetatable({}, {__len = function() return 2^62 end,"
    " __index = tostring}))",
    "unpack_huge_len": f"assert(not pcall(M['table.unpack'], {HUGE_LEN}))",
    "move_huge_len": f"local t = {HUGE_LEN} M['table.move'](t, 1, #t, 2)",
    "insert_sparse_border": "local t = {} for i = 40, 0, -1 do t[1 << i] = i end "
    "assert(#t == 1 << 40) M['table.insert'](t, 1, 0)",
    "remove_sparse_border": "local t = {} for i = 40, 0, -1 do t[1 << i] = i end "
    "assert(#t == 1 << 40) M['table.remove'](t, 1)",
    "sort_same_nul_string": "local s = ('\\0'):rep(3500000) local t = {} "
    "for i = 1, 45 do t[i] = s end M['table.sort'](t)",
    "sort_distinct_nul_strings": "local t = {} for i = 1, 40 do "
    "t[i] = ('\\0'):rep(1000000) .. string.char(i * 7 % 40) end "
    "M['table.sort'](t) for i = 2, 40 do assert(t[i - 1] < t[i]) end",
    "sort_c_comparator": "local t = {} for i = 1, 400000 do t[i] = (i * 7919) % 400009 end "
    "M['table.sort'](t, math.ult)",
    "rep_empty": "assert(M['string.rep']('', 1e15) == '')",
    "rep_empty_sep": "assert(M['string.rep']('', math.maxinteger, '') == '')",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_ends_quickly(case: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT), CASES[case]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    status, seconds = proc.stdout.split()
    assert status in ("done", "STOP"), proc.stdout
    assert float(seconds) < 10.0, proc.stdout
