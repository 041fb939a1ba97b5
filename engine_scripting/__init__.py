"""engine-scripting: sandboxed, fast Lua 5.4 scripting for esper ECS games.

The rooms: ``engine_scripting.engine`` (execution), ``engine_scripting.manager`` (lifecycle),
``engine_scripting.ecs`` (the esper side); errors and permissions beside them. Everything public
is re-exported here.
"""

import logging

from engine_scripting.ecs import (
    Console,
    ConsoleMessage,
    EventQueue,
    Script,
    ScriptEvent,
    ScriptSystem,
    WorldApi,
)
from engine_scripting.engine import ScriptContext, ScriptEngine, ScriptResourceLimits
from engine_scripting.errors import (
    CallAbandoned,
    PermissionDenied,
    ResourceLimitExceeded,
    SaveDataError,
    ScriptArgumentError,
    ScriptCompileError,
    ScriptError,
    ScriptRuntimeError,
    SecurityViolation,
)
from engine_scripting.manager import LoadedState, ScriptManager, ScriptStatus
from engine_scripting.permissions import Permissions

# a game that configures no logging sees nothing of the library's (engine_scripting/_log.py)
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "CallAbandoned",
    "Console",
    "ConsoleMessage",
    "EventQueue",
    "LoadedState",
    "PermissionDenied",
    "Permissions",
    "ResourceLimitExceeded",
    "SaveDataError",
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
    "WorldApi",
]
