"""JAX adapter: framework-specific checks (run in its own process: pytest tests/test_adapter_jax.py).

Expected numbers come from the tutorial documents (printed values at their printed precision) or from
the declared variant's citation, never from JAX itself.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from lossconf.adapters.jax import JaxAdapter
from lossconf.reference.dtypes import DTYPES, numpy_dtype

# documents/001: logits, labels and the printed rel1 (TensorFlow float32, 8 decimals)
LOGITS = np.array([[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]])
LABELS = np.array([2, 1])
ONEHOT = np.eye(3)[LABELS]
REL1_PRINTED = ["0.02215516", "3.09967351"]


@pytest.fixture(scope="module")
def adapter() -> JaxAdapter:
    pytest.importorskip("jax", reason="jax is not installed (pip install 'lossconf[jax]')")
    pytest.importorskip("optax", reason="optax is not installed (pip install 'lossconf[jax]')")
    a = JaxAdapter()
    a.load()
    return a


@pytest.fixture(scope="module")
def impls(adapter: JaxAdapter) -> dict:
    return {i.name: i for i in adapter.implementations()}


def test_table_names_are_unique(adapter: JaxAdapter) -> None:
    names = [i.name for i in adapter.implementations()]
    assert len(names) == len(set(names)), names


def test_float64_is_real(adapter: JaxAdapter) -> None:
    """Without x64 JAX silently computes float64 inputs in float32."""
    assert adapter.environment()["jax_enable_x64"] is True
    x = adapter.tensor(np.array([1.0 + 2.0**-40]), "float64")
    assert adapter.numpy(x)[0] == 1.0 + 2.0**-40


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "safe_softmax_cross_entropy"])
def test_reproduces_document_rel1_float32(impls: dict, adapter: JaxAdapter, name: str) -> None:
    """documents/001 prints rel1 = [0.02215516 3.09967351] for float32 softmax cross-entropy."""
    value, grad = adapter.value_and_grad(impls[name], LOGITS.astype(np.float32), ONEHOT.astype(np.float32),
                                         {"reduction": "none"}, "float32")
    assert [f"{v:.8f}" for v in value] == REL1_PRINTED
    assert grad.shape == LOGITS.shape


def test_integer_labels_rel1_float32_to_six_decimals(impls: dict, adapter: JaxAdapter) -> None:
    """Optax subtracts the label logit from logsumexp (6.0222 - 6 in float32, ulp 4.8e-7), so the
    first value carries ~1e-7 absolute error (inside the error model's |lse| + |x_c| scale): it
    matches the document's rel1 to 6 decimals, not to the 8 TensorFlow printed."""
    impl = impls["softmax_cross_entropy_with_integer_labels"]
    value, _ = adapter.value_and_grad(impl, LOGITS.astype(np.float32), LABELS, {"reduction": "none"}, "float32")
    assert [f"{v:.6f}" for v in value] == [f"{float(v):.6f}" for v in REL1_PRINTED]


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_impl_keeps_dtype_and_shape(impls: dict, adapter: JaxAdapter, dtype: str) -> None:
    """Value and gradient come back in the dtype under test; the gradient has the shape of first."""
    probs = np.array([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
    inputs = {
        "softmax_cross_entropy": (LOGITS, ONEHOT), "sparse_softmax_cross_entropy": (LOGITS, LABELS),
        "sigmoid_cross_entropy": (LOGITS, ONEHOT), "smooth_labels": (ONEHOT, None),
        "mean_squared_error": (LOGITS, probs), "kl_divergence": (np.log(probs), probs[::-1].copy()),
        "softmax": (LOGITS, None), "log_softmax": (LOGITS, None), "sigmoid": (LOGITS, None),
    }
    nd = numpy_dtype(dtype)
    for impl in impls.values():
        first, second = inputs[impl.loss]
        if second is not None and second.dtype.kind == "f":
            second = second.astype(nd)
        value, grad = adapter.value_and_grad(impl, first.astype(nd), second, {"reduction": "none"}, dtype)
        assert value.dtype == nd and grad.dtype == nd, (impl.name, value.dtype, grad.dtype)
        assert grad.shape == first.shape, impl.name


def test_bfloat16_round_trip_is_exact(adapter: JaxAdapter) -> None:
    x = np.array([1.0078125, -3.0e38, 2.0**-130], dtype=ml_dtypes.bfloat16)
    back = adapter.numpy(adapter.tensor(x, "bfloat16"))
    assert back.dtype == np.dtype(ml_dtypes.bfloat16)
    assert np.array_equal(back.view(np.uint16), x.view(np.uint16))


def test_l2_loss_is_half_squared_error(impls: dict, adapter: JaxAdapter) -> None:
    """Declared variant half_squared_error: optax docs, l2_loss = 0.5 * squared_error."""
    x, y = np.array([3.0, -1.0]), np.array([1.0, 1.0])
    value, grad = adapter.value_and_grad(impls["l2_loss"], x, y, {"reduction": "none"}, "float64")
    assert impls["l2_loss"].variant == "half_squared_error"
    assert value.tolist() == [2.0, 2.0]  # 0.5 * 2^2
    assert grad.tolist() == [2.0, -2.0]  # x - y, not 2 (x - y)


def test_ignore_index_through_where(impls: dict, adapter: JaxAdapter) -> None:
    """An ignored sample (label -100, masked by where=) contributes 0 and gets a zero gradient."""
    impl = impls["softmax_cross_entropy_with_integer_labels"]
    value, grad = adapter.value_and_grad(impl, LOGITS, np.array([2, -100]),
                                         {"reduction": "none", "ignore_index": -100}, "float64")
    assert value[1] == 0.0 and not grad[1].any()
    assert f"{value[0]:.8f}" == REL1_PRINTED[0]


def test_integer_labels_axis_1(impls: dict, adapter: JaxAdapter) -> None:
    """axis=1 on [N, C, d]: the same per-position values as the classes-last layout."""
    impl = impls["softmax_cross_entropy_with_integer_labels"]
    x = np.stack([LOGITS, LOGITS[::-1]], axis=-1)  # [2, 3, 2]: position 0 holds the document rows
    labels = np.array([[2, 1], [1, 2]])
    value, _ = adapter.value_and_grad(impl, x, labels, {"reduction": "none", "axis": 1}, "float64")
    assert value.shape == (2, 2)
    assert [f"{v:.6f}" for v in (value[0, 0], value[1, 0])] == [f"{float(v):.6f}" for v in REL1_PRINTED]


def test_smooth_labels_spreads_eps_over_c(impls: dict, adapter: JaxAdapter) -> None:
    """optax.smooth_labels: (1 - eps) y + eps / C (the canonical form, not eps / (C - 1))."""
    value, grad = adapter.value_and_grad(impls["smooth_labels"], np.array([[0.0, 0.0, 1.0, 0.0]]), None,
                                         {"reduction": "none", "label_smoothing": 0.2}, "float64")
    assert np.allclose(value, [[0.05, 0.05, 0.85, 0.05]], rtol=0, atol=1e-15)
    assert np.allclose(grad, 0.8, rtol=0, atol=1e-15)


def test_softmax_cross_entropy_neg_inf_logit_is_nan(impls: dict, adapter: JaxAdapter) -> None:
    """Known deviation (optax#896): label 0 * log_softmax(-inf) = NaN; the safe variant gives the limit."""
    x = np.array([[-np.inf, 0.0, 1.0]])
    t = np.array([[0.0, 0.0, 1.0]])
    plain, _ = adapter.value_and_grad(impls["softmax_cross_entropy"], x, t, {"reduction": "none"}, "float64")
    safe, _ = adapter.value_and_grad(impls["safe_softmax_cross_entropy"], x, t, {"reduction": "none"}, "float64")
    assert np.isnan(plain[0])
    assert f"{safe[0]:.10f}" == f"{np.log1p(np.exp(-1.0)):.10f}"  # -log softmax([0, 1])_1


def test_cpu_flushes_subnormals(adapter: JaxAdapter) -> None:
    """XLA on CPU flushes subnormal results to zero (jax#16200): sigmoid(-89) in float32 is 0, not 2.2e-39."""
    if adapter.environment()["backend"] != "cpu":
        pytest.skip("flush-to-zero is the CPU backend's mode")
    impl = next(i for i in adapter.implementations() if i.loss == "sigmoid")
    value, _ = adapter.value_and_grad(impl, np.array([-89.0], np.float32), None, {"reduction": "none"}, "float32")
    assert value[0] == 0.0
