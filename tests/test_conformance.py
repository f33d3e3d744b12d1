"""The full conformance matrix over the installed built-in adapters, one test per (adapter, loss, dtype)
asserting every check in it (value and gradient of every implementation and case); a failure lists each
failing check with its reproduction. Frameworks run in their own worker processes, never here.

The ids are known without starting any framework, and each adapter's matrix runs once, when its first
test runs, in the pytest process that runs it: under ``pytest -n 2`` (with ``--dist loadgroup``, set in
pyproject.toml) an adapter's tests form one xdist group, so every adapter is run by one xdist worker only
and the two workers share the adapters between them."""

from __future__ import annotations

import os

import pytest

from lossconf.reference import CATALOG, DTYPES
from lossconf.runner import DEFAULT_ADAPTERS
from lossconf.testing import ACCEPTED, ConformanceSession, Item

BUDGET = int(os.environ.get("LOSSCONF_TEST_BUDGET", "64"))
MATRIX = [pytest.param(adapter, loss, dtype, id=f"{adapter}:{loss}-{dtype}", marks=pytest.mark.xdist_group(adapter))
          for adapter in DEFAULT_ADAPTERS for loss in sorted(CATALOG) for dtype in DTYPES]


@pytest.fixture(scope="session")
def adapter_session():
    """Factory: ``adapter_session("torch")`` -> the ConformanceSession of that adapter, run once per process."""
    sessions: dict[str, tuple[ConformanceSession, dict[str, Item]]] = {}

    def get(adapter: str) -> tuple[ConformanceSession, dict[str, Item]]:
        if adapter not in sessions:
            session = ConformanceSession((adapter,), budget=BUDGET, by_loss=True)
            sessions[adapter] = session, {i.id: i for i in session.items}
        return sessions[adapter]

    return get


@pytest.mark.parametrize(("adapter", "loss", "dtype"), MATRIX)
def test_conformance(adapter_session, adapter, loss, dtype):
    session, items = adapter_session(adapter)
    item = items.get(f"{adapter}:not-installed") or items.get(f"{adapter}:failed-to-load") or items.get(
        f"{adapter}:{loss}-{dtype}")
    if item is None:
        pytest.skip(f"{adapter} implements no such (loss, dtype)")
    outcome, why = session.outcome(item)
    if outcome == "skip":
        pytest.skip(why)
    assert outcome == "pass", why


def test_a_failing_check_fails_its_loss_dtype_test_with_every_failing_check_explained():
    """The grouping keeps each check's verdict: a zoo adapter (mean for sum) fails its (loss, dtype) test."""
    from lossconf.adapters.loading import load_adapter

    reason = load_adapter("torch").available()
    if reason:
        pytest.skip(reason)
    zoo = f"{os.path.dirname(__file__)}/bugzoo/zoo.py:SumForMean"
    session = ConformanceSession((zoo,), budget=2, losses=("mean_squared_error",), dtypes=("float32",), by_loss=True)
    items = {i.id: i for i in session.items}
    assert list(items) == ["zoo_sum_for_mean:mean_squared_error-float32"]
    outcome, why = session.outcome(items["zoo_sum_for_mean:mean_squared_error-float32"])
    assert outcome == "fail"
    failing = [c for c in session.results()["checks"] if c["verdict"] not in (*ACCEPTED, "unsupported")]
    assert failing and all(f"{c['id']}: " in why for c in failing), why
    assert why.count("reproduce:") == len(failing)
