"""JAX adapter: framework-specific checks.

JAX is never imported here: calls go to a lossconf worker process (``framework("jax")``), and code
that must touch JAX directly runs there as the module-level ``_helpers`` below. Expected numbers come
from the tutorial documents (printed values at their printed precision), from a declared variant's
citation or from arithmetic facts (2^-127 is a float32 subnormal), never from JAX itself.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from adapter_checks import CTC_INPUTS

from lossconf.reference.dtypes import DTYPES, numpy_dtype

# documents/001: logits, labels and the printed rel1 (TensorFlow float32, 8 decimals)
LOGITS = np.array([[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]])
LABELS = np.array([2, 1])
ONEHOT = np.eye(3)[LABELS]
REL1_PRINTED = ["0.02215516", "3.09967351"]
PROBS = np.array([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
INPUTS = {  # a small valid (first, second) per catalog loss
    "softmax_cross_entropy": (LOGITS, ONEHOT), "sparse_softmax_cross_entropy": (LOGITS, LABELS),
    "sigmoid_cross_entropy": (LOGITS, ONEHOT), "smooth_labels": (ONEHOT, None),
    "mean_squared_error": (LOGITS, PROBS), "kl_divergence": (np.log(PROBS), PROBS[::-1].copy()),
    "softmax": (LOGITS, None), "log_softmax": (LOGITS, None), "sigmoid": (LOGITS, None),
    "huber": (LOGITS, ONEHOT), "smooth_l1": (LOGITS, ONEHOT), "log_cosh": (LOGITS, ONEHOT),
    "hinge": (LOGITS, 2 * ONEHOT - 1), "squared_hinge": (LOGITS, 2 * ONEHOT - 1), "poisson_nll": (LOGITS, 3 * ONEHOT),
    "sigmoid_focal_loss": (LOGITS, ONEHOT), "cosine_similarity": (LOGITS, PROBS),
    "ctc": CTC_INPUTS,
}


@pytest.fixture(scope="module")
def fw(framework):
    return framework("jax")


# -- helpers run in the worker: fn(adapter, *args) -------------------------------------------------

def _x64_round_trip(adapter) -> float:
    return float(adapter.numpy(adapter.tensor(np.array([1.0 + 2.0**-40]), "float64"))[0])


def _round_trip(adapter, x: np.ndarray, dtype: str) -> np.ndarray:
    return adapter.numpy(adapter.tensor(x, dtype))


def _halve_under_jit(adapter, x: np.ndarray) -> np.ndarray:
    """x * 0.5 in one compiled XLA computation on the adapter's device (no loss code involved)."""
    import jax

    return np.asarray(jax.jit(lambda a: a * 0.5)(adapter.tensor(x, x.dtype.name)))


def _unsupported_reason(adapter, impl_name: str, shape: tuple, second_shape: tuple) -> str | None:
    impl = next(i for i in adapter.implementations() if i.name == impl_name)
    return impl.unsupported_reason("float64", {"reduction": "none"}, shape, second_shape)


# -- the table and the environment -----------------------------------------------------------------

def test_table_names_are_unique(fw) -> None:
    names = [i["name"] for i in fw.describe["implementations"]]
    assert len(names) == len(set(names)), names


def test_float64_is_real(fw) -> None:
    """Without x64 JAX silently computes float64 inputs in float32."""
    assert fw.describe["environment"]["flags"]["jax_enable_x64"] == "True"
    assert fw.run("test_adapter_jax:_x64_round_trip") == 1.0 + 2.0**-40


def test_bfloat16_round_trip_is_exact(fw) -> None:
    x = np.array([1.0078125, -3.0e38, 2.0**-130], dtype=ml_dtypes.bfloat16)
    back = fw.run("test_adapter_jax:_round_trip", x, "bfloat16")
    assert back.dtype == np.dtype(ml_dtypes.bfloat16)
    assert np.array_equal(back.view(np.uint16), x.view(np.uint16))


@pytest.mark.parametrize("dtype", DTYPES)
def test_flush_to_zero_is_declared_exactly_where_cpu_flushes(fw, dtype: str) -> None:
    """jax#16200: XLA on CPU flushes subnormal results to zero. Halving the smallest normal number
    gives a subnormal in IEEE arithmetic; under jit it reads 0 in float32/float64 and in bfloat16
    (computed in float32), but float16 keeps it. The adapter declares exactly those dtypes."""
    if not fw.describe["environment"]["device"].startswith("cpu"):
        pytest.skip("flush-to-zero is the CPU backend's mode")
    tiny = np.array([ml_dtypes.finfo(numpy_dtype(dtype)).smallest_normal], dtype=numpy_dtype(dtype))
    exact = float(tiny[0]) / 2  # a power of two: exact in float64 and representable as a subnormal
    got = float(fw.run("test_adapter_jax:_halve_under_jit", tiny)[0])
    declared = dtype in fw.describe["flushes_subnormals"]
    assert got == (0.0 if declared else exact), (dtype, got, declared)


def test_float16_sigmoid_overflows_exp(fw) -> None:
    """Known deviation: XLA expands logistic as 1 / (1 + exp(-x)) in float16, exp(11.09) > 65504, so
    sigmoid(-11.0625) is 1.57e-5 but sigmoid(-11.125) = 1.47e-5 reads 0 (a float16 subnormal)."""
    value, grad = fw.call("sigmoid", "float16", np.array([-11.0625, -11.125], np.float16))
    assert value[0] > 0 and value[1] == 0.0 and grad[1] == 0.0
    assert 1.0 / (1.0 + np.exp(11.125)) > float(np.finfo(np.float16).smallest_subnormal)


# -- values against the documents and the cited variants -------------------------------------------

@pytest.mark.parametrize("name", ["softmax_cross_entropy", "safe_softmax_cross_entropy"])
def test_reproduces_document_rel1_float32(fw, name: str) -> None:
    """documents/001 prints rel1 = [0.02215516 3.09967351] for float32 softmax cross-entropy."""
    value, grad = fw.call(name, "float32", LOGITS.astype(np.float32), ONEHOT.astype(np.float32))
    assert [f"{v:.8f}" for v in value] == REL1_PRINTED
    assert grad.shape == LOGITS.shape


def test_integer_labels_rel1_float32_to_six_decimals(fw) -> None:
    """Optax subtracts the label logit from logsumexp (6.0222 - 6 in float32, ulp 4.8e-7), so the
    first value carries ~1e-7 absolute error (inside the error model's |lse| + |x_c| scale): it
    matches the document's rel1 to 6 decimals, not to the 8 TensorFlow printed."""
    value, _ = fw.call("softmax_cross_entropy_with_integer_labels", "float32", LOGITS.astype(np.float32), LABELS)
    assert [f"{v:.6f}" for v in value] == [f"{float(v):.6f}" for v in REL1_PRINTED]


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_impl_keeps_dtype_and_shape(fw, dtype: str) -> None:
    """Value and gradient come back in the dtype under test; the gradient has the shape of first."""
    nd = numpy_dtype(dtype)
    for impl in fw.describe["implementations"]:
        if impl["loss"] == "linear_cross_entropy":  # several inputs: tests/test_adapter_linear.py
            continue
        first, second = INPUTS[impl["loss"]]
        if second is not None and second.dtype.kind == "f":
            second = second.astype(nd)
        value, grad = fw.call(impl["name"], dtype, first.astype(nd), second)
        # known optax-ctc-float64-result-under-x64: one_hot's float64 default promotes the loss
        want = np.dtype(np.float64) if impl["name"] == "ctc_loss" else nd
        assert value.dtype == want and grad.dtype == nd, (impl["name"], value.dtype, grad.dtype)
        assert grad.shape == first.shape, impl["name"]


def test_l2_loss_is_half_squared_error(fw) -> None:
    """Declared variant half_squared_error: optax docs, l2_loss = 0.5 * squared_error."""
    assert fw.impls["l2_loss"]["variant"] == "half_squared_error"
    value, grad = fw.call("l2_loss", "float64", np.array([3.0, -1.0]), np.array([1.0, 1.0]))
    assert value.tolist() == [2.0, 2.0]  # 0.5 * 2^2
    assert grad.tolist() == [2.0, -2.0]  # x - y, not 2 (x - y)


def test_ignore_index_through_where(fw) -> None:
    """An ignored sample (label -100, masked by where=) contributes 0 and gets a zero gradient."""
    value, grad = fw.call("softmax_cross_entropy_with_integer_labels", "float64", LOGITS, np.array([2, -100]),
                          {"ignore_index": -100})
    assert value[1] == 0.0 and not grad[1].any()
    assert f"{value[0]:.8f}" == REL1_PRINTED[0]


def test_integer_labels_axis_1(fw) -> None:
    """axis=1 on [N, C, d]: the same per-position values as the classes-last layout."""
    x = np.stack([LOGITS, LOGITS[::-1]], axis=-1)  # [2, 3, 2]: position 0 holds the document rows
    labels = np.array([[2, 1], [1, 2]])
    value, _ = fw.call("softmax_cross_entropy_with_integer_labels", "float64", x, labels, {"axis": 1})
    assert value.shape == (2, 2)
    assert [f"{v:.6f}" for v in (value[0, 0], value[1, 0])] == [f"{float(v):.6f}" for v in REL1_PRINTED]


def test_smooth_labels_spreads_eps_over_c(fw) -> None:
    """optax.smooth_labels: (1 - eps) y + eps / C (the canonical form, not eps / (C - 1))."""
    value, grad = fw.call("smooth_labels", "float64", np.array([[0.0, 0.0, 1.0, 0.0]]), None,
                          {"label_smoothing": 0.2})
    assert np.allclose(value, [[0.05, 0.05, 0.85, 0.05]], rtol=0, atol=1e-15)
    assert np.allclose(grad, 0.8, rtol=0, atol=1e-15)


# -- batching --------------------------------------------------------------------------------------

def test_one_dimensional_input_is_one_row(fw) -> None:
    """A 1-D softmax input has its classes on axis 0 (axis=0 likewise): three equal logits give 1/3."""
    value, grad = fw.call("softmax", "float64", np.zeros(3))
    assert value.shape == (3,) and grad.shape == (3,)
    assert np.allclose(value, 1.0 / 3.0, rtol=1e-15, atol=0)
    value, _ = fw.call("softmax", "float64", np.zeros((3, 2)), None, {"axis": 0})
    assert np.allclose(value, 1.0 / 3.0, rtol=1e-15, atol=0)


# -- declared limits and known deviations (evidence for lossconf/known/jax.toml) --------------------

def test_squared_error_needs_equal_shapes(fw) -> None:
    """optax checks shapes equal although its docstring says broadcastable: declared unsupported."""
    for name in ("squared_error", "l2_loss"):
        assert "check_shapes_equal" in fw.run("test_adapter_jax:_unsupported_reason", name, (2, 3), (3,))
        assert fw.run("test_adapter_jax:_unsupported_reason", name, (2, 3), (2, 3)) is None
    with pytest.raises(Exception, match="[Ss]hape"):
        fw.call("squared_error", "float64", np.ones((2, 3)), np.ones(3))


def test_softmax_cross_entropy_neg_inf_logit_is_nan(fw) -> None:
    """Known deviation (optax#896): label 0 * log_softmax(-inf) = NaN; the safe variant gives the limit."""
    x = np.array([[-np.inf, 0.0, 1.0]])
    t = np.array([[0.0, 0.0, 1.0]])
    plain, _ = fw.call("softmax_cross_entropy", "float64", x, t)
    safe, _ = fw.call("safe_softmax_cross_entropy", "float64", x, t)
    assert np.isnan(plain[0])
    assert f"{safe[0]:.10f}" == f"{np.log1p(np.exp(-1.0)):.10f}"  # -log softmax([0, 1])_1


def test_posinf_logit_gives_nan_row(fw) -> None:
    """Documented (jax#21495): a +inf logit makes the softmax/log_softmax row NaN, not the limit."""
    x = np.array([[np.inf, 0.0, 1.0]])
    for name in ("softmax", "log_softmax"):
        value, _ = fw.call(name, "float64", x)
        assert np.isnan(value).all(), name


def test_kl_zero_target_with_neg_inf_log_q_is_nan(fw) -> None:
    """Known deviation (optax PR #1786): p = 0 where log q = -inf gives 0 * inf = NaN, not 0."""
    value, _ = fw.call("kl_divergence", "float64", np.array([[-np.inf, np.log(0.5), np.log(0.5)]]),
                       np.array([[0.0, 0.5, 0.5]]))
    assert np.isnan(value[0])


def test_softmax_float16_gradient_overflows(fw) -> None:
    """Known deviation: d sum(softmax)/dx is exactly 0, but in float16 with sum(exp) = 1000 >= 256 the
    default (non custom_jvp) softmax gradient loses its 1/sum^2 term to overflow and equals softmax."""
    assert fw.describe["environment"]["flags"]["jax_softmax_custom_jvp"] == "False"
    value, grad = fw.call("softmax", "float16", np.zeros((1, 1000), np.float16))
    assert np.array_equal(grad, value)
    assert grad[0, 0] == np.float16(1e-3)


def test_l2_loss_float16_squares_before_halving(fw) -> None:
    """Known deviation: 0.5 * 300^2 = 45000 fits float16 (max 65504) but 300^2 does not."""
    assert 0.5 * 300.0**2 < float(np.finfo(np.float16).max) < 300.0**2
    value, _ = fw.call("l2_loss", "float16", np.array([300.0], np.float16), np.array([0.0], np.float16))
    assert value[0] == np.inf
