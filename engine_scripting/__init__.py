"""engine-scripting: sandboxed, fast Lua 5.4 scripting for esper ECS games."""

from engine_scripting.components import Console, ConsoleMessage, EventQueue, Script, ScriptEvent
from engine_scripting.context import ScriptContext
from engine_scripting.engine import ScriptEngine
from engine_scripting.errors import (
    CallAbandoned,
    PermissionDenied,
    ResourceLimitExceeded,
    ScriptArgumentError,
    ScriptCompileError,
    ScriptError,
    ScriptRuntimeError,
    SecurityViolation,
)
from engine_scripting.limits import ScriptResourceLimits
from engine_scripting.manager import ScriptManager, ScriptStatus
from engine_scripting.permissions import Permissions
from engine_scripting.system import ScriptSystem

__all__ = [
    "CallAbandoned",
    "Console",
    "ConsoleMessage",
    "EventQueue",
    "PermissionDenied",
    "Permissions",
    "ResourceLimitExceeded",
    "Script",
    "ScriptArgumentError",
    "ScriptCompileError",
    "ScriptContext",
    "ScriptEngine",
    "ScriptError",
    "ScriptEvent",
    "ScriptManager",
    "ScriptResourceLimits",
    "ScriptRuntimeError",
    "ScriptStatus",
    "ScriptSystem",
    "SecurityViolation",
]
