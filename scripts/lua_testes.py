"""Run the official Lua 5.4 test files (testes/*.lua) in plain Lua and in the sandbox.

Usage: ``python3 scripts/lua_testes.py PATH [--timeout S] [--only NAME ...]``, where PATH is a
lua/lua checkout (e.g. /work/lua-5.4.8). Nothing is copied from it.

Each file runs twice, each time in its own subprocess with a hard timeout (this script calls
itself with ``--child``):

- plain: a ``lupa.lua54.LuaRuntime`` whose global table is stripped to the globals a sandboxed
  script gets (the names in a sandboxed context's ``_G``, library tables to the keys the sandbox
  gives them), with the runtime's original functions; ``print`` goes nowhere.
- sandbox: a sandboxed context with generous limits (256 MiB, 60 s, recursion 1,000,000).

Both set ``_soft``, ``_port`` and ``_nomsg`` to true, as testes/all.lua does for a portable soft
run. Prints a table: file, plain result, sandbox result, first line of the error. Files that need
io/os/debug/package fail in both; only files that pass plain say something about the sandbox.
With ``--shim`` both runtimes first run the same small prelude (SHIM: os.clock, os.time,
require "tracegc" stand-ins) so that sort.lua and cstack.lua get past their first lines.
A file "diverges" when it fails in both but with different errors (the sandbox fails earlier).
Exits 1 when a file passes plain but not in the sandbox.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
FLAGS = ("_soft", "_port", "_nomsg")
MEMORY_MB = 256
TIME_MS = 60_000
RECURSION = 1_000_000

_PLAIN_SETUP = """
local promised = ...
local G, next, type = _G, next, type
local originals = {}
for name, v in next, G do originals[name] = v end
for name in next, originals do
  if promised[name] == nil then G[name] = nil end
end
for name, keys in next, promised do
  if type(keys) == "table" then
    local lib, keep, drop = originals[name], {}, {}
    for _, k in next, keys do keep[k] = true end
    for k in next, lib do if not keep[k] then drop[#drop + 1] = k end end
    for _, k in next, drop do lib[k] = nil end
  end
end
G._G = G
G.print = function() end
"""


# --shim: the same harmless stand-ins in both runtimes, so that files which only time themselves
# (os.clock), load the GC tracer (require "tracegc"), print a %p of io.stdin or ask for a locale
# (strings.lua) get past those lines.
SHIM = """
local clock = 0
os = {clock = function() clock = clock + 0.001; return clock end, time = function() return 0 end,
      setlocale = function(name) if name == nil or name == "C" then return "C" end end}
io = {stdin = {}, write = function() end}
local tracegc = {start = function() end, stop = function() end}
require = function(name)
  if name == "tracegc" then return tracegc end
  if type(_G[name]) == "table" then return _G[name] end
  error("module '" .. tostring(name) .. "' not found")
end
"""


def promised_globals() -> dict[str, list[str] | None]:
    """Name -> keys (library tables) or None, as a sandboxed context sees its globals."""
    from engine_scripting import ScriptEngine

    ctx = ScriptEngine().create_context("promised")
    listing = ctx.execute(
        "local out = {} for name, v in next, _G do "
        "if type(v) == 'table' and name ~= '_G' then local keys = {} "
        "for k in next, v do keys[#keys + 1] = k end "
        "out[#out + 1] = name .. '=' .. table.concat(keys, ',') "
        "else out[#out + 1] = name end end return table.concat(out, ' ')"
    )
    ctx.close()
    result: dict[str, list[str] | None] = {}
    for item in str(listing).split():
        name, eq, keys = item.partition("=")
        result[name] = keys.split(",") if eq else None
    return result


def run_plain(path: Path, shim: bool) -> dict[str, Any]:
    """Run one test file in the restricted plain runtime; {"ok": bool, "error": str}."""
    import lupa.lua54 as lua54

    runtime = lua54.LuaRuntime(unpack_returned_tuples=True, register_eval=False,
                               register_builtins=False, encoding=None)
    promised = {
        name.encode(): runtime.table_from([k.encode() for k in keys]) if keys else True
        for name, keys in promised_globals().items()
    }
    load = runtime.globals()[b"load"]
    xpcall = runtime.globals()[b"xpcall"]
    tostring = runtime.globals()[b"tostring"]
    runtime.execute(_PLAIN_SETUP, runtime.table_from(promised))
    globals_ = runtime.globals()
    for flag in FLAGS:
        globals_[flag.encode()] = True
    if shim:
        load(SHIM.encode(), b"=shim", b"t")()
    runner = runtime.eval(
        "function(load, xpcall, tostring, source, name) "
        "local fn, err = load(source, name, 't') "
        "if not fn then return false, 'compile: ' .. err end "
        "local ok, e = xpcall(fn, function(m) return tostring(m) end) "
        "return ok, ok and '' or e end"
    )
    ok, error = runner(load, xpcall, tostring, source(path), b"=" + path.name.encode())
    return {"ok": bool(ok), "error": _text(error)}


def run_sandbox(path: Path, shim: bool) -> dict[str, Any]:
    """Run one test file in a sandboxed context; {"ok": bool, "error": str}."""
    from engine_scripting import ScriptEngine, ScriptError, ScriptResourceLimits

    limits = ScriptResourceLimits(max_memory_mb=MEMORY_MB, max_execution_time_ms=TIME_MS,
                                  max_recursion_depth=RECURSION)
    engine = ScriptEngine(limits=limits)
    ctx = engine.create_context("testes")
    try:
        ctx.execute("_soft, _port, _nomsg = true, true, true", chunk_name="flags")
        if shim:
            ctx.execute(SHIM, chunk_name="shim")
        ctx.execute(source(path), chunk_name=path.name)
    except ScriptError as error:
        return {"ok": False, "error": f"{type(error).__name__}: {error.message}"}
    finally:
        ctx.close()
        engine.close()
    return {"ok": True, "error": ""}


def source(path: Path) -> bytes:
    """The file's text; a first line starting with '#' is blanked, as lua.c's loader skips it."""
    text = path.read_bytes()
    if text.startswith(b"#"):
        text = text[text.find(b"\n"):] if b"\n" in text else b""
    return text


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def child(mode: str, file: str, shim: bool) -> int:
    """Run one file in this process and print its result as one JSON line."""
    path = Path(file)
    os.chdir(path.parent)
    started = time.perf_counter()
    result = run_plain(path, shim) if mode == "plain" else run_sandbox(path, shim)
    result["seconds"] = round(time.perf_counter() - started, 2)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


def run_child(mode: str, path: Path, timeout: float, shim: bool) -> dict[str, Any]:
    """Run one file in a subprocess with a hard timeout."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", mode, str(path)]
    if shim:
        command.append("--shim")
    env = dict(os.environ, PYTHONPATH=str(PROJECT))
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              env=env, check=False)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timeout after {timeout:g} s", "seconds": timeout}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            result: dict[str, Any] = json.loads(line)
            return result
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"ok": False, "error": f"crashed (exit {done.returncode}): {tail}", "seconds": 0}


def _first_line(text: str) -> str:
    return text.strip().partition("\n")[0][:110]


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run every file in both modes and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("path", nargs="?", help="a lua/lua checkout (holds testes/)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per file and mode")
    parser.add_argument("--only", nargs="*", default=None, help="file names to run")
    parser.add_argument("--shim", action="store_true",
                        help="give both runtimes stand-ins for os.clock/os.time/require'tracegc'")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child[0], args.child[1], args.shim)
    if args.path is None:
        parser.error("the path of a lua/lua checkout is required")
    testes = Path(args.path) / "testes"
    files = sorted(testes.glob("*.lua"))
    if args.only:
        files = [f for f in files if f.name in args.only or f.stem in args.only]
    header = f"{'file':<16} {'plain':<7} {'sandbox':<8} first error line"
    sys.stdout.write(header + "\n" + "-" * len(header) + "\n")
    regressions = 0
    for path in files:
        plain = run_child("plain", path, args.timeout, args.shim)
        sandbox = run_child("sandbox", path, args.timeout, args.shim)
        if plain["ok"] and not sandbox["ok"]:
            regressions += 1
        error = sandbox["error"] if plain["ok"] or not plain["error"] else plain["error"]
        if not plain["ok"] and not sandbox["ok"] and plain["error"] != sandbox["error"]:
            error = f"plain: {_first_line(plain['error'])} | sandbox: {sandbox['error']}"
        row = (f"{path.name:<16} {'pass' if plain['ok'] else 'FAIL':<7} "
               f"{'pass' if sandbox['ok'] else 'FAIL':<8} {_first_line(error)}")
        sys.stdout.write(row + "\n")
        sys.stdout.flush()
    sys.stdout.write(f"\nfiles that pass plain but fail in the sandbox: {regressions}\n")
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
