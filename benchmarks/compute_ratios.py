"""Interleaved ratio report: sandboxed context vs plain lupa.lua54.LuaRuntime, one process.

Usage: python benchmarks/compute_ratios.py [--rounds N]
Each round runs every workload once on each side, alternating the order; the ratio per
workload is the ratio of medians, and the summary is their geometric mean.
"""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import lupa.lua54 as lua54

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.workloads import WORKLOADS
from engine_scripting import ScriptEngine, ScriptResourceLimits


def _time(run: object, source: str) -> float:
    started = time.perf_counter()
    run(source)  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    rounds = parser.parse_args().rounds
    engine = ScriptEngine(ScriptResourceLimits(max_memory_mb=256, max_execution_time_ms=60_000))
    sandboxed = engine.create_context("bench")
    plain = lua54.LuaRuntime()
    ratios = []
    sys.stdout.write(f"{'workload':<24}{'plain ms':>10}{'sandbox ms':>12}{'ratio':>8}\n")
    for name, source in WORKLOADS.items():
        plain_times, sandbox_times = [], []
        for index in range(rounds):
            gc.collect()
            if index % 2:
                plain_times.append(_time(plain.execute, source))
                sandbox_times.append(_time(sandboxed.execute, source))
            else:
                sandbox_times.append(_time(sandboxed.execute, source))
                plain_times.append(_time(plain.execute, source))
        plain_ms = statistics.median(plain_times) * 1e3
        sandbox_ms = statistics.median(sandbox_times) * 1e3
        ratio = sandbox_ms / plain_ms
        ratios.append(ratio)
        sys.stdout.write(f"{name:<24}{plain_ms:>10.2f}{sandbox_ms:>12.2f}{ratio:>8.3f}\n")
    geomean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    sys.stdout.write(f"{'geometric mean':<46}{geomean:>8.3f}\n")

    count = 300
    started = time.perf_counter()
    contexts = [engine.create_context(f"c{i}") for i in range(count)]
    per_context_us = (time.perf_counter() - started) / count * 1e6
    lua_bytes = statistics.median(c.memory_used for c in contexts)
    del contexts
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    held = [engine.create_context(f"m{i}") for i in range(100)]
    python_bytes = (tracemalloc.get_traced_memory()[0] - before) / len(held)
    tracemalloc.stop()
    plain_started = time.perf_counter()
    for _ in range(count):
        lua54.LuaRuntime()
    plain_us = (time.perf_counter() - plain_started) / count * 1e6
    sys.stdout.write(
        f"context creation: {per_context_us:.0f} us each (bare LuaRuntime {plain_us:.0f} us); "
        f"Lua memory {lua_bytes / 1024:.1f} KiB, Python-side {python_bytes / 1024:.1f} KiB\n"
    )
    engine.close()


if __name__ == "__main__":
    main()
