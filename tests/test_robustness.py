"""A faulty adapter (raises, hangs, kills its process, wrong shapes, NaN) never harms the run.

Each faulty adapter (``tests/faulty/adapters.py``) runs beside the real torch adapter. Then: torch's
verdicts equal those of a run without the faulty adapter; the faulted checks are ``error`` with a
message naming the fault (``fail`` for NaN); the faulty adapter's other checks agree with torch; and
every check written to results.jsonl is in results.json, once.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lossconf.adapters.loading import load_adapter
from lossconf.cases import all_cases
from lossconf.runner import RunConfig, run
from lossconf.verdicts import Truths, cast_inputs

FAULTY = Path(__file__).parent / "faulty" / "adapters.py"
LOSSES = ("sigmoid", "softmax", "log_softmax", "mean_squared_error")
DTYPES = ("float32", "float64")
SEED, BUDGET = 3, 4
KINDS = ("document", "edge", "random")  # cases with a truth: invalid inputs are judged by their own rule


def _config(out: Path, adapters: tuple[str, ...], timeout: float = 60.0) -> RunConfig:
    return RunConfig(out=out, adapters=adapters, losses=LOSSES, dtypes=DTYPES, seed=SEED, budget=BUDGET,
                     kinds=KINDS, timeout=timeout)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> dict:
    """torch alone: check id -> record."""
    results = run(_config(tmp_path_factory.mktemp("baseline"), ("torch",)))
    assert results["complete"]
    return {c["id"]: c for c in results["checks"]}


def _faulted(adapter) -> set[tuple[str, str]]:
    """(case id, dtype) pairs the adapter faults, from the same predicate, on the cast inputs."""
    cases = all_cases(SEED, BUDGET, losses=LOSSES, kinds=KINDS)
    return {(case.id, dtype) for case in cases for dtype in DTYPES if case.dtypes is None or dtype in case.dtypes
            if adapter.triggers(case.loss, cast_inputs(case, dtype)[0])}


def _stream_checks(out: Path) -> list[str]:
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["check"]["id"] for line in lines if json.loads(line)["type"] == "check"]


def _as_torch(verdict: str) -> str:
    return "fail" if verdict == "known" else verdict  # known deviations are registered for "torch" only


def _faulty(attr: str):
    """The faulty adapter instance (loading it does not import torch)."""
    return load_adapter(f"{FAULTY}:{attr}")


def _run_beside_torch(tmp_path: Path, attr: str, baseline: dict, timeout: float = 60.0):
    results = run(_config(tmp_path, ("torch", f"{FAULTY}:{attr}"), timeout))
    checks = {c["id"]: c for c in results["checks"]}
    torch_now = {i: c["verdict"] for i, c in checks.items() if c["adapter"] == "torch"}
    assert torch_now == {i: c["verdict"] for i, c in baseline.items()}, "torch's verdicts changed"
    stream = _stream_checks(tmp_path)
    assert len(stream) == len(set(stream)) == len(checks), "results.jsonl and results.json disagree"
    assert set(stream) == set(checks)
    assert results["complete"] and not results["environment"]["failed_adapters"]
    name = _faulty(attr).name
    faulty = {i: c for i, c in checks.items() if c["adapter"] == name}
    assert len(faulty) == len(baseline), "the faulty adapter lost checks"
    return name, faulty


def _split(faulty: dict, name: str, adapter) -> tuple[list[dict], list[dict]]:
    hit = _faulted(adapter)
    faulted = [c for c in faulty.values() if (c["case"], c["dtype"]) in hit and c["verdict"] != "unsupported"]
    others = [c for c in faulty.values() if (c["case"], c["dtype"]) not in hit]
    assert faulted, f"{name}: the fault never triggered; the test proves nothing"
    return faulted, others


def _assert_others_agree(others: list[dict], name: str, baseline: dict) -> None:
    for c in others:
        twin = baseline[c["id"].replace(f"{name}:", "torch:", 1)]
        assert _as_torch(c["verdict"]) == _as_torch(twin["verdict"]), (c["id"], c["message"], twin["message"])


@pytest.mark.parametrize(("attr", "message", "timeout"), [
    ("Raises", "injected fault: this adapter raises on sigmoid", 60.0),
    ("Hangs", "timed out after", 4.0),
    ("Dies", "worker process died (exit code -9): FatalError: injected fault", 60.0),
    ("DiesIsolated", "process died (exit code -9) in an isolated call (a forked child of the worker): "
                     "FatalError: injected fault", 60.0),
    ("WrongShapes", "wrong shape", 60.0),
])
def test_faulty_adapter_is_contained(tmp_path, baseline, attr, message, timeout):
    name, faulty = _run_beside_torch(tmp_path, attr, baseline, timeout)
    faulted, others = _split(faulty, name, _faulty(attr))
    for c in faulted:
        assert c["verdict"] == "error", (c["id"], c["verdict"], c["message"])
        assert message in c["message"], (c["id"], c["message"])
    _assert_others_agree(others, name, baseline)
    if attr == "Dies":  # what the dying worker wrote is in its adapter's log, off the terminal
        assert "FatalError: injected fault" in (tmp_path / "workers" / f"{name}.log").read_text()


def test_nan_everywhere_fails_unless_the_truth_is_nan(tmp_path, baseline):
    name, faulty = _run_beside_torch(tmp_path, "ReturnsNaN", baseline)
    ran = [c for c in faulty.values() if c["verdict"] != "unsupported"]
    assert ran
    cases = {c.id: c for c in all_cases(SEED, BUDGET, losses=LOSSES)}
    truths = Truths()
    for c in ran:  # the truth from the reference itself (a passing check stores no arrays)
        truth = truths.get(cases[c["case"]], c["dtype"])[0 if c["quantity"] == "value" else 1]
        truth_all_nan = bool(np.isnan(truth).all())
        expected = "pass" if truth_all_nan else "fail"
        assert c["verdict"] == expected, (c["id"], c["verdict"], c["message"])
        if expected == "fail":
            assert "nan" in c["message"].lower(), c["message"]
    unsupported = {i for i, c in faulty.items() if c["verdict"] == "unsupported"}
    assert unsupported == {i.replace("torch:", f"{name}:", 1) for i, c in baseline.items()
                           if c["verdict"] == "unsupported"}


def test_faults_are_per_case_not_per_batch():
    """The predicates pick single cases or whole losses, never rows of a random batch by chance."""
    for attr in ("Hangs", "Dies"):
        assert all(case_id.startswith("edge_") for case_id, _ in _faulted(_faulty(attr))), attr
