"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import esper
import pytest

BLOCKS = re.findall(r"```python\n(.*?)```",
                    (Path(__file__).resolve().parent.parent / "README.md").read_text(), re.S)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int) -> None:
    previous = esper.current_world
    esper.switch_world(f"readme-{index}")
    try:
        exec(compile(BLOCKS[index], f"README block {index}", "exec"), {})
    finally:
        esper.switch_world(previous)
        esper.delete_world(f"readme-{index}")
