"""The manager room: lifecycle only.

``ScriptManager`` is the one store of scripts: load, reload, unload, enable, disable, status.
"""

from engine_scripting.manager._manager import ScriptManager, ScriptStatus

__all__ = ["ScriptManager", "ScriptStatus"]
