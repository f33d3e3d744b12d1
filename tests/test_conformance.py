"""The full conformance matrix over the installed built-in adapters, one test per
(adapter:implementation-dtype-case). Frameworks run in their own worker processes, never here."""

from __future__ import annotations

import os

import pytest

from lossconf.runner import DEFAULT_ADAPTERS
from lossconf.testing import ConformanceSession

BUDGET = int(os.environ.get("LOSSCONF_TEST_BUDGET", "64"))
SESSION = ConformanceSession(DEFAULT_ADAPTERS, budget=BUDGET)


@pytest.mark.parametrize("item", SESSION.items, ids=[i.id for i in SESSION.items])
def test_conformance(item):
    outcome, why = SESSION.outcome(item)
    if outcome == "skip":
        pytest.skip(why)
    assert outcome == "pass", why
