"""Property tests: generated programs through every wrapped function, sandbox vs plain Lua.

A difference listed in harness.KNOWN_DIFFERENCES is passed over; any other fails the test with
both outcomes. Default run: about 60 s on 2 cores in total (see EXAMPLES).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from . import strategies as gen
from .harness import assert_same

EXAMPLES = 60
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])


@SETTINGS
@given(gen.string_programs)
def test_string_functions(code: str) -> None:
    assert_same(code)


@SETTINGS
@given(gen.table_programs)
def test_table_functions(code: str) -> None:
    assert_same(code)


@SETTINGS
@given(gen.load_programs())
def test_load(code: str) -> None:
    assert_same(code)


@SETTINGS
@given(gen.base_programs())
def test_print_collectgarbage_pcall_xpcall(code: str) -> None:
    assert_same(code)


@SETTINGS
@given(gen.coroutine_programs())
def test_coroutines(code: str) -> None:
    assert_same(code)
