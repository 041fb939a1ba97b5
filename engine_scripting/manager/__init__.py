"""The manager room: lifecycle only.

``ScriptManager`` is the one store of scripts: load, reload, unload, enable, disable, status.
APIs reach a script's context through ``ContextInitializer``s given to the manager.
"""

from engine_scripting.manager._manager import ScriptManager
from engine_scripting.manager._records import (
    ContextInitializer,
    ManagedScript,
    ScriptSpec,
    ScriptStatus,
)
from engine_scripting.manager._state import LoadedState, SavesState, StagedPart

__all__ = ["ContextInitializer", "LoadedState", "ManagedScript", "SavesState", "ScriptManager",
           "ScriptSpec", "ScriptStatus", "StagedPart"]
