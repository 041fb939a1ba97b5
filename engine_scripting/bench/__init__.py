"""Benchmark scenes and the ``engine-scripting bench`` report (see docs/performance.md)."""
