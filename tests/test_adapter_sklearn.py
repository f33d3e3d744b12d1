"""scikit-learn adapter: framework-specific checks.

sklearn is never imported here (the worker runs it). Expected numbers come from the tutorial documents,
the declared variants' citation (clip to [eps, 1 - eps], eps the dtype's machine epsilon) and
arithmetic, never from scikit-learn itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from adapter_checks import ONEHOT, PROBS, assert_keeps_dtype_and_shape, assert_names_unique

WHY = "adapter_checks:unsupported_reason_in_worker"
EPS_BITS = {"float16": 10, "float32": 23, "float64": 52}


@pytest.fixture(scope="module")
def fw(framework):
    return framework("sklearn")


def test_table_names_are_unique_and_all_value_only(fw) -> None:
    assert_names_unique(fw)
    assert not any(i["grad"] for i in fw.impls.values())


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_every_impl_keeps_dtype_and_shape(fw, dtype: str) -> None:
    assert_keeps_dtype_and_shape(fw, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log_loss_clips_at_the_dtypes_machine_epsilon(fw, dtype: str) -> None:
    """log_loss docs: y_proba is clipped to [eps, 1 - eps]: probability 0 under target 1 costs -log(eps)."""
    name = f"log_loss[{dtype}]"
    assert fw.impls[name]["variant"] == f"clip_probabilities_eps_{dtype}"
    p = np.array([[1.0, 0.0]], dtype)
    value, _ = fw.call(name, dtype, p, np.array([[0.0, 1.0]], dtype), {"reduction": "sum"})
    np.testing.assert_allclose(value, EPS_BITS[dtype] * math.log(2), rtol=1e-6)


def test_log_loss_mean_and_sum_match_the_document(fw) -> None:
    """documents/000: -log 0.6 = 0.51 and -log 0.2 = 1.61 per sample; mean and sum over the two."""
    value, _ = fw.call("log_loss[float64]", "float64", PROBS, ONEHOT, {"reduction": "sum"})
    assert f"{value:.2f}" == f"{-math.log(0.6) - math.log(0.2):.2f}"
    value, _ = fw.call("log_loss[float64]", "float64", PROBS, ONEHOT, {"reduction": "mean"})
    assert f"{value:.3f}" == f"{(-math.log(0.6) - math.log(0.2)) / 2:.3f}"


def test_log_loss_takes_soft_targets_as_class_weights(fw) -> None:
    """A target row t is passed as per-class sample weights: sum_c t_c (-log p_c); here 0.5 log 2 + 0.5 log 4."""
    value, _ = fw.call("log_loss[float64]", "float64", np.array([[0.5, 0.25, 0.25]]), np.array([[0.5, 0.0, 0.5]]),
                       {"reduction": "sum"})
    np.testing.assert_allclose(value, 1.5 * math.log(2), rtol=1e-15)


def test_rmse_is_over_all_elements_not_a_mean_of_columns(fw) -> None:
    """[[3, 0], [4, 0]] against zeros: sqrt(25 / 4) = 2.5 over all elements (sklearn's per-column
    average would be (sqrt(25 / 2) + 0) / 2 = 1.77)."""
    value, _ = fw.call("root_mean_squared_error", "float64", np.array([[3.0, 0.0], [4.0, 0.0]]), np.zeros((2, 2)),
                       {"reduction": "mean"})
    assert value == 2.5


def test_log_loss_shape_restrictions(fw) -> None:
    assert fw.run(WHY, "log_loss[float32]", {"reduction": "mean"}, (4, 3), (4, 3)) is None
    assert fw.run(WHY, "log_loss[float32]", {"reduction": "mean"}, (4, 1), (4, 1)) is not None  # C = 1
    assert fw.run(WHY, "log_loss[float32]", {"reduction": "mean"}, (2, 3, 4), (2, 3, 4)) is not None
    # the composed input of soft targets grows as N C^2: [16, 1000] is run, [64, 1000] (9 s a call) is not
    assert fw.run(WHY, "log_loss[float32]", {"reduction": "mean"}, (16, 1000), (16, 1000)) is None
    assert "N C^2 = 64,000,000" in fw.run(WHY, "log_loss[float32]", {"reduction": "mean"}, (64, 1000), (64, 1000))


def test_this_process_never_imported_sklearn(fw) -> None:
    import sys

    assert "sklearn" not in sys.modules
