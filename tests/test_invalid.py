"""Invalid inputs (case kind ``invalid``): the reference rejects every one of them, and a check on one is
judged by its own rule: raising or NaN conforms, a silent number fails unless a declared clip documents it."""

from __future__ import annotations

import numpy as np
import pytest

from lossconf.cases import KINDS, all_cases, case_by_id
from lossconf.invalid import behaviour, invalid_cases, judge_invalid
from lossconf.reference import value_and_grad
from lossconf.verdicts import cast_inputs

CASES = invalid_cases()
IMPL = {"name": "cross_entropy", "api": "x", "variant": None, "grad": True}


def _record() -> dict:
    return {"verdict": "error", "message": "", "got": None, "got_values": None, "variant": None}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_reference_rejects_every_invalid_case(case):
    first, second, params = cast_inputs(case, "float32")
    with pytest.raises((ValueError, TypeError)):
        value_and_grad(case.loss, first, second, **params)


def test_invalid_is_a_kind_and_every_case_is_replayable():
    assert "invalid" in KINDS
    chosen = [c for c in all_cases(0, 4, kinds=("invalid",))]
    assert [c.id for c in chosen] == [c.id for c in CASES] and all(c.kind == "invalid" for c in chosen)
    assert case_by_id("inv_sparse_label_negative", seed=0).second.tolist() == [-1, -2]


def test_raising_or_nan_conforms_a_silent_number_fails():
    case = case_by_id("inv_sparse_label_negative", seed=0)
    text = "Traceback\nIndexError: Target -1 is out of bounds."
    raised = judge_invalid(_record(), case, IMPL, failure=("error", text))
    assert raised["verdict"] == "pass" and raised["message"] == "raises: IndexError: Target -1 is out of bounds."
    assert judge_invalid(_record(), case, IMPL, np.array([np.nan, np.nan]))["verdict"] == "pass"
    wrapped = judge_invalid(_record(), case, IMPL, np.array([0.28, 1.4]))
    assert wrapped["verdict"] == "fail" and behaviour(wrapped) == "number"
    assert judge_invalid(_record(), case, IMPL, np.array([-np.inf, -np.inf]))["verdict"] == "fail"
    crashed = judge_invalid(_record(), case, IMPL, failure=("crash", "worker process died (exit code -11)"))
    assert crashed["verdict"] == "fail" and behaviour(crashed) == "crashed"


def test_a_declared_clip_documents_finite_values_on_out_of_range_probabilities_only():
    keras = {**IMPL, "variant": "clip_probabilities_1e-7"}
    probs = case_by_id("inv_bce_p_above_one", seed=0)
    assert judge_invalid(_record(), probs, keras, np.array([1e-7, 15.9]))["verdict"] == "variant"
    assert judge_invalid(_record(), probs, IMPL, np.array([1e-7, 15.9]))["verdict"] == "fail"
    shape = case_by_id("inv_bce_shape", seed=0)
    assert judge_invalid(_record(), shape, keras, np.array([0.1, 0.2, 0.3]))["verdict"] == "fail"
