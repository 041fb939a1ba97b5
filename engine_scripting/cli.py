"""The ``engine-scripting`` command line.

``engine-scripting run FILE.lua [--memory-mb N] [--time-ms N] [--recursion N]`` runs a file in a
fresh sandbox and prints its returned value(s). On a ScriptError it prints ``ErrorClass: message``
to stderr and exits 1.

``engine-scripting bench [--quick] [--json PATH]`` measures per-frame costs and prints the
ratios against the project's overhead targets.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import structlog

from engine_scripting.engine import ScriptEngine
from engine_scripting.errors import ScriptError
from engine_scripting.limits import ScriptResourceLimits


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="engine-scripting", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a Lua file in a fresh sandbox")
    run.add_argument("file", type=Path)
    defaults = ScriptResourceLimits()
    run.add_argument("--memory-mb", type=float, default=defaults.max_memory_mb)
    run.add_argument("--time-ms", type=float, default=defaults.max_execution_time_ms)
    run.add_argument("--recursion", type=int, default=defaults.max_recursion_depth)
    bench = commands.add_parser("bench", help="measure per-frame costs against the targets")
    bench.add_argument("--quick", action="store_true", help="a short run (fewer entities)")
    bench.add_argument("--json", type=Path, help="also write the figures as JSON here")
    return parser


def _run(args: argparse.Namespace) -> int:
    try:
        limits = ScriptResourceLimits(
            max_memory_mb=args.memory_mb,
            max_execution_time_ms=args.time_ms,
            max_recursion_depth=args.recursion,
        )
        source = args.file.read_bytes()
    except (ValueError, OSError) as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    engine = ScriptEngine(limits)
    context = engine.create_context(args.file.stem, on_print=lambda line: _out(line))
    try:
        result = context.execute(source)
    except ScriptError as error:
        sys.stderr.write(f"{type(error).__name__}: {error}\n")
        return 1
    finally:
        context.close()
        engine.close()
    values = result if isinstance(result, tuple) else (result,)
    for value in values:
        _out(json.dumps(value, ensure_ascii=False, default=str))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from engine_scripting.bench.report import format_report, run

    report = run(args.quick, _progress)
    _out(format_report(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    return 0


def _progress(step: str) -> None:
    sys.stderr.write(f"measuring {step}...\n")


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``engine-scripting`` console script."""
    args = _parser().parse_args(argv)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    if args.command == "run":
        return _run(args)
    if args.command == "bench":
        return _bench(args)
    return 2  # pragma: no cover - argparse requires a command


if __name__ == "__main__":
    raise SystemExit(main())
