"""SciPy adapter: framework-specific checks.

scipy is never imported here (the worker runs it). Expected numbers come from the tutorial documents
(printed values) and arithmetic, never from SciPy itself.
"""

from __future__ import annotations

import numpy as np
import pytest
from adapter_checks import LABELS, LOGITS, ONEHOT, REL1_PRINTED, assert_keeps_dtype_and_shape, assert_names_unique

from lossconf.reference.dtypes import DTYPES

WHY = "adapter_checks:unsupported_reason_in_worker"


@pytest.fixture(scope="module")
def fw(framework):
    return framework("scipy")


def _expit_float16_result_dtype(adapter) -> str:
    """The dtype scipy.special.expit returns for a float16 input (runs in the worker)."""
    import scipy.special

    return scipy.special.expit(np.ones(2, np.float16)).dtype.name


def test_table_names_are_unique_and_all_value_only(fw) -> None:
    assert_names_unique(fw)
    assert not any(i["grad"] for i in fw.impls.values())


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_impl_keeps_dtype_and_shape(fw, dtype: str) -> None:
    assert_keeps_dtype_and_shape(fw, dtype)


def test_ufuncs_lack_float16_loops_as_declared(fw) -> None:
    """expit has no float16 loop: a float16 input comes back wider, so float16 is not declared."""
    assert fw.run("test_adapter_scipy:_expit_float16_result_dtype") != "float16"
    assert fw.impls["expit"]["dtypes"] == ["float32", "float64"]


def test_log_softmax_gives_document_rel1(fw) -> None:
    """documents/001: rel1 = -log_softmax(logits)[label] = [0.02215516 3.09967351]."""
    value, _ = fw.call("log_softmax", "float32", LOGITS.astype(np.float32))  # printed from float32
    np.testing.assert_allclose(-value[[0, 1], LABELS], REL1_PRINTED, rtol=2e-7)


def test_composed_cross_entropy_and_kl_are_per_sample(fw) -> None:
    """-sum(xlogy(t, p)) over classes; sum(rel_entr(p, q)) is 0 for q = p and log(1/q_y) for one-hot p."""
    probs = np.array([[0.25, 0.25, 0.5], [0.5, 0.25, 0.25]])
    value, _ = fw.call("-sum(xlogy(t, p))", "float64", probs, ONEHOT)
    np.testing.assert_allclose(value, [np.log(2), np.log(4)], rtol=1e-15)
    value, _ = fw.call("sum(rel_entr(p, q))", "float64", probs, ONEHOT, {"log_input": False})
    np.testing.assert_allclose(value, [np.log(2), np.log(4)], rtol=1e-15)
    value, _ = fw.call("sum(rel_entr(p, q))", "float64", probs, probs, {"log_input": False})
    assert value.tolist() == [0.0, 0.0]
    assert fw.run(WHY, "sum(rel_entr(p, q))", {"log_input": True}, (2, 3), (2, 3)) is not None


def test_this_process_never_imported_scipy(fw) -> None:
    import sys

    assert "scipy" not in sys.modules
