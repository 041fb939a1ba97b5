"""Resource limits of one script context."""

from __future__ import annotations

import math
from dataclasses import dataclass

# The largest source the sandbox compiles (a script's file or source, and each `load` chunk): the
# compiler's work per byte has no small bound, so this bounds the time a compile can take.
MAX_SOURCE_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class ScriptResourceLimits:
    """Memory, time and recursion limits that a sandboxed context enforces.

    Attributes:
        max_memory_mb: memory the context's Lua state may use, in MiB (whole state, not per call).
        max_execution_time_ms: wall-clock budget of one ``execute`` or ``call``.
        max_recursion_depth: deepest call stack a script may build (see docs/security.md for
            how exact the check is).

    Raises ValueError when a limit is not a positive, finite number.
    """

    max_memory_mb: float = 16.0
    max_execution_time_ms: float = 100.0
    max_recursion_depth: int = 200

    def __post_init__(self) -> None:
        for name in ("max_memory_mb", "max_execution_time_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, not {type(value).__name__}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be positive and finite, not {value!r}")
        depth = self.max_recursion_depth
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"max_recursion_depth must be a positive int, not {depth!r}")

    @property
    def max_memory_bytes(self) -> int:
        """The memory limit in bytes."""
        return int(self.max_memory_mb * 1024 * 1024)

    @property
    def max_execution_time_s(self) -> float:
        """The time budget in seconds."""
        return self.max_execution_time_ms / 1000.0
