"""The ``engine-scripting`` command line.

``engine-scripting run FILE.lua [--memory-mb N] [--time-ms N] [--recursion N]`` runs a file in a
fresh sandbox and prints its returned value(s). On a ScriptError it prints ``ErrorClass: message``
to stderr and exits 1.

``engine-scripting bench [--quick] [--json PATH]`` measures per-frame costs and prints the
ratios against the project's overhead targets.

``engine-scripting demo [SCENE] [--frames N] [--headless] [--snapshot PATH]`` runs the demo
scenes (all of them without SCENE); ``demo --list`` names them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from engine_scripting.demo.runner import (
    DEMO_LIMITS,
    HEADLESS_FRAMES,
    format_result,
    has_display,
    pygame_available,
    run_scene,
)
from engine_scripting.demo.scenes import SCENES
from engine_scripting.engine import ScriptEngine, ScriptResourceLimits
from engine_scripting.errors import ScriptError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="engine-scripting", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a Lua file in a fresh sandbox")
    run.add_argument("file", type=Path)
    defaults = ScriptResourceLimits()
    run.add_argument("--memory-mb", type=float, default=defaults.max_memory_mb)
    run.add_argument("--time-ms", type=float, default=defaults.max_execution_time_ms)
    run.add_argument("--recursion", type=int, default=defaults.max_recursion_depth)
    demo = commands.add_parser("demo", help="run the demo scenes (pygame-ce for a window)")
    demo.add_argument("scene", nargs="?", help="one scene; all of them when left out")
    demo.add_argument("--list", action="store_true", help="print the scene names and exit")
    demo.add_argument("--frames", type=int, help="frames per scene (default: until closed, "
                      f"or {HEADLESS_FRAMES} without a window)")
    demo.add_argument("--headless", action="store_true", help="no window (SDL dummy driver)")
    demo.add_argument("--snapshot", type=Path, help="save the last frame as a PNG")
    demo.add_argument("--verbose", action="store_true", help="also log script errors")
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


def _demo(args: argparse.Namespace) -> int:
    if args.list:
        for scene in SCENES.values():
            _out(f"{scene.name}  {scene.description}")
        return 0
    names = [args.scene] if args.scene else list(SCENES)
    if args.scene and args.scene not in SCENES:
        sys.stderr.write(f"error: no scene {args.scene!r}; try: {', '.join(SCENES)}\n")
        return 2
    if args.frames is not None and args.frames < 1:
        sys.stderr.write("error: --frames must be at least 1\n")
        return 2
    headless = args.headless or not has_display()
    if args.snapshot is not None and not pygame_available():
        sys.stderr.write("error: --snapshot needs pygame-ce: pip install -e '.[demo]'\n")
        return 2
    frames = args.frames if args.frames is not None else (HEADLESS_FRAMES if headless else None)
    engine = ScriptEngine(DEMO_LIMITS)
    try:
        for index, name in enumerate(names):
            snapshot = None
            if args.snapshot is not None:
                snapshot = str(args.snapshot if len(names) == 1 or index == len(names) - 1
                               else args.snapshot.with_stem(f"{args.snapshot.stem}-{name}"))
            result = run_scene(name, frames=frames, headless=headless, snapshot=snapshot,
                               engine=engine)
            _out(format_result(result))
    finally:
        engine.close()
    return 0


def _progress(step: str) -> None:
    sys.stderr.write(f"measuring {step}...\n")


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``engine-scripting`` console script."""
    args = _parser().parse_args(argv)
    # the demo shows script errors on screen and in its report; logs would drown them
    level = logging.CRITICAL if args.command == "demo" and not args.verbose else logging.WARNING
    # the library logs through the standard logging module (engine_scripting/_log.py): show its
    # warnings and errors on stderr for the length of the command
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    package = logging.getLogger("engine_scripting")
    previous = package.level
    package.addHandler(handler)
    package.setLevel(level)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "bench":
            return _bench(args)
        if args.command == "demo":
            return _demo(args)
        return 2  # pragma: no cover - argparse requires a command
    finally:
        package.removeHandler(handler)
        package.setLevel(previous)


if __name__ == "__main__":
    raise SystemExit(main())
