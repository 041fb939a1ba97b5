"""_native.py fails closed: every offset, release and C API symbol it relies on is checked at
start-up, and a wrong one raises NativeLayoutError instead of crashing or turning a defence off.

Each case patches one constant of engine_scripting.engine._native in a fresh interpreter (a wrong
offset must not be able to take the test run down), then builds an engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OK, REFUSED = "NATIVE-LAYOUT-OK", "NATIVE-LAYOUT-REFUSED"

CHILD = """
import sys
sys.path.insert(0, {root!r})
import engine_scripting.engine._native as native
import engine_scripting.engine._native_probe as native_probe
{patch}
from engine_scripting import ScriptEngine, ScriptResourceLimits
try:
    engine = ScriptEngine(ScriptResourceLimits(max_execution_time_ms=50))
except native.NativeLayoutError as error:
    print({refused!r}, error, flush=True)
else:
    context = engine.create_context("c")
    assert context.execute("return 1 + 1") == 2
    try:
        context.execute("while true do end")
    except Exception as error:
        assert getattr(error, "limit_type", None) == "time", error
    print({ok!r}, flush=True)
"""

_MISSING = """
import ctypes, types
_real = ctypes.PyDLL
class _Library:
    def __init__(self, *args):
        self._library = _real(*args)
    def __getattr__(self, name):
        if name == {name!r}:
            raise AttributeError(name)
        return getattr(self._library, name)
shim = types.ModuleType("ctypes")
shim.__dict__.update(ctypes.__dict__)
shim.PyDLL = _Library
native.ctypes = shim
"""

WRONG = {
    "global_offset_8": "native._STATE_GLOBAL_OFFSET = 8",
    "global_offset_32": "native._STATE_GLOBAL_OFFSET = 32",
    "state_size": "native._STATE_SIZE = 208",
    "mainthread": "native._GLOBAL_MAINTHREAD_OFFSET = 256",
    "allowhook": "native._STATE_ALLOWHOOK_OFFSET = 10",
    "top": "native._STATE_TOP_OFFSET = 24",
    "ci": "native._STATE_CI_OFFSET = 40",
    "stack_last": "native._STATE_STACK_LAST_OFFSET = 32",
    "stack": "native._STATE_STACK_OFFSET = 56",
    "base_ci": "native._STATE_BASE_CI_OFFSET = 104",
    "hook": "native._STATE_HOOK_OFFSET = 168",
    "basehookcount": "native._STATE_BASEHOOKCOUNT_OFFSET = 188",
    "hookcount": "native._STATE_HOOKCOUNT_OFFSET = 184",
    "hookmask": "native._STATE_HOOKMASK_OFFSET = 188",
    "ci_func": "native._CI_FUNC_OFFSET = 8",
    "ci_previous": "native._CI_PREVIOUS_OFFSET = 24",
    "ci_trap": "native._CI_TRAP_OFFSET = 44",
    "ci_callstatus": "native._CI_CALLSTATUS_OFFSET = 60",
    "debug_ci": "native._DEBUG_CI_OFFSET = 120",
    "table_array_8": "native._TABLE_ARRAY_OFFSET = 8",
    "table_array_24": "native._TABLE_ARRAY_OFFSET = 24",
    "table_array_32": "native._TABLE_ARRAY_OFFSET = 32",
    "table_tt": "native._TABLE_TT_OFFSET = 9",
    "table_metatable": "native._TABLE_METATABLE_OFFSET = 48",
    "tvalue_tag": "native._TVALUE_TAG_OFFSET = 12",
    "tvalue_size": "native._TVALUE_SIZE = 24",
    "totalbytes": "native._GLOBAL_TOTALBYTES_OFFSET = 32",
    "gcdebt": "native._GLOBAL_DEBT_OFFSET = 16",
    "string_table": "native._GLOBAL_STRT_SIZE_OFFSET = 56",
    "gcstopem": "native._GLOBAL_GCSTOPEM_OFFSET = 102",
    "tmname": "native._GLOBAL_TMNAME_OFFSET = 288",
    "release": "native.SUPPORTED_RELEASES = ('5.4.7',)",
    "version_num": "native.LUA_VERSION_NUM = 503",
    "lupa_version": "import lupa.lua54; lupa.lua54.LUA_VERSION = (5, 3)",
    "missing_gethook": _MISSING.format(name="lua_gethook"),
    "missing_getstack": _MISSING.format(name="lua_getstack"),
    "missing_ident": _MISSING.format(name="lua_ident"),
}


def _run(patch: str) -> subprocess.CompletedProcess[str]:
    code = CHILD.format(root=str(ROOT), patch=patch, ok=OK, refused=REFUSED)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)


def test_the_real_layout_passes_and_the_watchdog_stops_a_loop() -> None:
    result = _run("")
    assert result.returncode == 0, result.stderr[-2000:]
    assert OK in result.stdout


@pytest.mark.parametrize("patch", WRONG.values(), ids=WRONG.keys())
def test_a_wrong_layout_is_refused_never_crashes(patch: str) -> None:
    result = _run(patch)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert REFUSED in result.stdout, result.stdout[-2000:]
