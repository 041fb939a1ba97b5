"""The pattern guard changes how matches run, never what they return.

An engine whose C calls may take no time at all (``c_call_share`` of 1e-12) sends every match to
patterns.lua's Lua matcher; the default engine keeps cheap ones on the C matcher. Both must give
plain Lua's results, in a whole sandbox (tests/engine/test_patterns*.py test the module alone).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine_scripting import ScriptContext, ScriptEngine, ScriptResourceLimits

PATTERNS = [
    "%d+:", "(%w+)=(%w+)", "a*b", "a-b", "(a+)(b?)", "^a+", "b$", " *(=)x", "()a()",
    "[ab]+c?", "%bab", "(a)%1", "%f[%w]%w+", ".-b", "a.?", "[^a]+", "x*", "", "()1+()",
    "(x)(=)", "[%d:]+", "1=?",
]
SUBJECTS = st.builds(
    lambda piece, times: piece * times,
    st.text(alphabet="ab: =1x", max_size=40), st.integers(min_value=1, max_value=20),
)


@pytest.fixture(scope="module", params=[1e-12, 0.5], ids=["lua-matcher", "default"])
def guarded(request: pytest.FixtureRequest) -> Iterator[ScriptContext]:
    engine = ScriptEngine(
        ScriptResourceLimits(max_memory_mb=32, max_execution_time_ms=2000),
        c_call_share=request.param,
    )
    context = engine.create_context("guarded")
    yield context
    context.close()
    engine.close()


@pytest.fixture(scope="module")
def plain() -> Iterator[ScriptContext]:
    engine = ScriptEngine(trusted=True)
    context = engine.create_context("plain")
    yield context
    context.close()


PROBE = """
local s, p = ...
local gm = {}
for a, b in string.gmatch(s, p) do gm[#gm + 1] = tostring(a) .. "|" .. tostring(b) end
local gs, count = string.gsub(s, p, "<%0>")
local gf, fcount = string.gsub(s, p, function(x) return "[" .. tostring(x) .. "]" end, 3)
return {find = {string.find(s, p)}, find3 = {string.find(s, p, 3)}, match = {string.match(s, p)},
        gmatch = gm, gsub = {gs, count}, gsubf = {gf, fcount}}
"""


def _run(context: ScriptContext, subject: str, pattern: str) -> object:
    context.execute(f"probe = function(...) {PROBE} end")
    return context.call("probe", subject, pattern)


@settings(max_examples=150, deadline=None)
@given(subject=SUBJECTS, pattern=st.sampled_from(PATTERNS))
def test_guarded_matching_equals_plain_lua(
    guarded: ScriptContext, plain: ScriptContext, subject: str, pattern: str,
) -> None:
    assert _run(guarded, subject, pattern) == _run(plain, subject, pattern)


def test_common_patterns_on_long_subjects_stay_on_the_fast_path(engine: ScriptEngine) -> None:
    context = engine.create_context("fast")
    count = context.execute("""
        local s = ("key=value;"):rep(2000)
        local n = 0
        for k, v in s:gmatch("(%w+)=(%w+)") do n = n + 1 end
        return n""")
    assert count == 2000


LONG_SUBJECTS = [
    "ab " * 300 + "123:456 1=x 11:",
    " " * 900 + "x=1 ()",
    ("1a2b:" * 200) + "=== 12:34",
    "=" * 700 + "1x=1",
]


@pytest.mark.parametrize("subject", LONG_SUBJECTS)
@pytest.mark.parametrize("pattern", ["%d+:", "()1+()", "(%d)(%d)", "(x)(=)", "[%d:]+", "1=?"])
def test_matches_far_into_long_subjects_equal_plain_lua(
    guarded: ScriptContext, plain: ScriptContext, subject: str, pattern: str,
) -> None:
    assert _run(guarded, subject, pattern) == _run(plain, subject, pattern)
    probe = "local s, p = ... return {string.find(s, p, 600)}, {string.match(s, p, -20)}"
    guarded.execute(f"far = function(...) {probe} end")
    plain.execute(f"far = function(...) {probe} end")
    assert guarded.call("far", subject, pattern) == plain.call("far", subject, pattern)
