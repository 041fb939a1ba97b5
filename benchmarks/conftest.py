"""Benchmarks run against real lupa runtimes; see docs/performance.md for the figures."""
