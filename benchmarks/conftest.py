"""Benchmarks run against real lupa runtimes; see docs/performance.md for the figures."""

from __future__ import annotations

from typing import Any


def pytest_benchmark_update_json(config: Any, benchmarks: Any, output_json: dict[str, Any]) -> None:
    """Keep the statistics, drop every raw timing: the JSON is for comparing changes, and
    fast benchmarks run hundreds of thousands of rounds (tens of MB of raw data)."""
    for benchmark in output_json["benchmarks"]:
        benchmark["stats"].pop("data", None)
