"""IEEE propagation on +-inf inputs is the shared catalog variant ``ieee_inf_propagation``: NaN where the
limit is meant reads ``variant``, the limit itself ``pass``, and NaN anywhere else still fails."""

from __future__ import annotations

import math

import numpy as np

from lossconf.cases import make_case
from lossconf.verdicts import Truths, base_record, judge

IMPL = {"name": "softmax", "api": "numpy", "variant": None}


def _judge(case, got: np.ndarray, quantity: str = "value") -> dict:
    record = base_record(case, "np", IMPL, "float32", quantity)
    return judge(record, case, IMPL, "float32", got.astype(np.float32), Truths())


def _softmax_case(row: list[float]):
    return make_case("t_softmax", "softmax", [row], kind="edge", nonfinite=True)


def test_nan_row_on_a_pos_inf_logit_is_the_ieee_variant():
    case = _softmax_case([math.inf, 0.0, 1.0])
    rec = _judge(case, np.full((1, 3), np.nan))
    assert rec["verdict"] == "variant" and rec["variant"] == "ieee_inf_propagation", rec["message"]


def test_the_limit_on_a_pos_inf_logit_passes():
    case = _softmax_case([math.inf, 0.0, 1.0])
    assert _judge(case, np.array([[1.0, 0.0, 0.0]]))["verdict"] == "pass"


def test_a_wrong_number_beside_the_nan_still_fails():
    # NaN is allowed only where the +-inf input reaches; a finite element of the row must be right
    case = make_case("t_sig", "sigmoid", [math.inf, 0.0], kind="edge", nonfinite=True)
    assert _judge(case, np.array([np.nan, 0.5]))["verdict"] == "variant"
    assert _judge(case, np.array([np.nan, 0.75]))["verdict"] == "fail"


def test_nan_without_an_inf_input_fails():
    case = _softmax_case([2.0, 0.0, 1.0])
    assert _judge(case, np.full((1, 3), np.nan))["verdict"] == "fail"


def test_nan_in_a_finite_row_beside_an_inf_row_fails():
    case = make_case("t_sce", "sparse_softmax_cross_entropy", [[math.inf, 0.0], [1.0, 2.0]], [1, 0],
                     kind="edge", nonfinite=True)
    assert _judge(case, np.array([np.nan, 1.3132617]))["verdict"] == "variant"
    assert _judge(case, np.array([np.nan, np.nan]))["verdict"] == "fail"
