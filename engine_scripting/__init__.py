"""engine-scripting: sandboxed, fast Lua 5.4 scripting for esper ECS games."""

from engine_scripting.context import ScriptContext
from engine_scripting.engine import ScriptEngine
from engine_scripting.errors import (
    PermissionDenied,
    ResourceLimitExceeded,
    ScriptCompileError,
    ScriptError,
    ScriptRuntimeError,
    SecurityViolation,
)
from engine_scripting.limits import ScriptResourceLimits

__all__ = [
    "PermissionDenied",
    "ResourceLimitExceeded",
    "ScriptCompileError",
    "ScriptContext",
    "ScriptEngine",
    "ScriptError",
    "ScriptResourceLimits",
    "ScriptRuntimeError",
    "SecurityViolation",
]
