"""Reading what the manager keeps of a script: its code (from source text or a file, within
the size limit) and its config (a shallow copy of plain data keyed by strings)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from engine_scripting.engine import MAX_SOURCE_BYTES
from engine_scripting.errors import ScriptArgumentError, ScriptError


def read_source(name: str, source: str | bytes | None,
                path: str | Path | None) -> tuple[bytes, Path | None, int | None]:
    """A script's or module's code from ``source`` (text or bytes) or from the file at ``path``
    (exactly one of them), with the file's path and modification time (None for a source);
    raises ScriptError for both or neither, a file that cannot be read, or too large a code."""
    if (source is None) == (path is None):
        raise ScriptError("give either source or path", script=name)
    if source is not None:
        code = source.encode("utf-8") if isinstance(source, str) else source
        if not isinstance(code, bytes):
            raise ScriptError("source must be str or bytes", script=name)
        if len(code) > MAX_SOURCE_BYTES:
            raise ScriptError(f"source is larger than {MAX_SOURCE_BYTES} bytes", script=name)
        return code, None, None
    file_path = Path(path)  # type: ignore[arg-type]
    try:
        modified_ns = os.stat(file_path).st_mtime_ns
        with open(file_path, "rb") as handle:
            code = handle.read(MAX_SOURCE_BYTES + 1)
    except OSError as error:
        raise ScriptError(f"cannot read {file_path}: {error}", script=name) from error
    if len(code) > MAX_SOURCE_BYTES:
        raise ScriptError(f"{file_path} is larger than {MAX_SOURCE_BYTES} bytes", script=name)
    return code, file_path, modified_ns


def config_of(name: str, config: Mapping[str, object] | None) -> dict[str, object]:
    """A script's config as plain data the host keeps (a shallow copy of the mapping)."""
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise ScriptArgumentError(f"config must be a mapping, not {type(config).__name__}",
                                  script=name)
    for key in config:
        if not isinstance(key, str):
            raise ScriptArgumentError(f"config keys must be strings, not {key!r}", script=name)
    return dict(config)
