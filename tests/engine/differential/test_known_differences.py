"""Each entry of harness.KNOWN_DIFFERENCES, reproduced: a strict xfail until its fix lands."""

from __future__ import annotations

import pytest

from .harness import KNOWN_DIFFERENCES, KnownDifference, compare


@pytest.mark.parametrize(
    "entry",
    [pytest.param(entry, id=entry.key,
                  marks=pytest.mark.xfail(strict=True, reason=f"[{entry.group}] {entry.reason}"))
     for entry in KNOWN_DIFFERENCES],
)
def test_known_difference_is_gone(entry: KnownDifference) -> None:
    comparison = compare(entry.repro)
    assert comparison.same, comparison.report()


@pytest.mark.parametrize("entry", KNOWN_DIFFERENCES, ids=[e.key for e in KNOWN_DIFFERENCES])
def test_signature_recognises_its_reproduction(entry: KnownDifference) -> None:
    """While a difference exists, its signature must recognise it (else the property tests
    would report it as new)."""
    comparison = compare(entry.repro)
    if not comparison.same:
        assert entry.matches(comparison.sandbox, comparison.plain, entry.repro), comparison.report()
