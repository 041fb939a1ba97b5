"""The library's loggers: structlog events delivered through the standard ``logging`` module.

A game that configures no logging sees nothing (``engine_scripting/__init__.py`` gives the
package's logger a ``NullHandler``, as libraries do). Events go through structlog's processors as
configured (so ``structlog.testing.capture_logs`` and a game's own structlog set-up see them),
then to the stdlib logger named after the module, whose level and handlers decide what is shown:
``logging.basicConfig(level=logging.WARNING)`` shows warnings and errors (docs/scripting.md).
"""

from __future__ import annotations

import logging
from typing import Any

import structlog


def get_logger(name: str) -> Any:
    """The structlog logger of module ``name``, writing to ``logging.getLogger(name)``."""
    return structlog.wrap_logger(logging.getLogger(name))
