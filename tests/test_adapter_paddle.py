"""PaddlePaddle adapter: framework-specific checks (own process: pytest tests/test_adapter_paddle.py).

Expected numbers come from the tutorial documents (printed values at their printed precision) or from
the declared variant's citation, never from paddle itself.
"""

from __future__ import annotations

import numpy as np
import pytest

from lossconf.adapters.paddle import PaddleAdapter
from lossconf.reference.dtypes import numpy_dtype

# documents/001 (TensorFlow tutorial): logits, labels and the printed rel1 (float32, 8 decimals)
LOGITS = np.array([[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]])
LABELS = np.array([2, 1])
REL1_PRINTED = [0.02215516, 3.09967351]


@pytest.fixture(scope="module")
def adapter() -> PaddleAdapter:
    pytest.importorskip("paddle", reason="paddle is not installed (pip install 'lossconf[paddle]')")
    a = PaddleAdapter()
    a.load()
    return a


@pytest.fixture(scope="module")
def impls(adapter: PaddleAdapter) -> dict:
    return {i.name: i for i in adapter.implementations()}


def _call(adapter, impl, first, second=None, dtype="float64", **params):
    return adapter.value_and_grad(impl, first.astype(numpy_dtype(dtype)), second, {"reduction": "none", **params},
                                  dtype)


def test_table_names_are_unique(adapter: PaddleAdapter) -> None:
    names = [i.name for i in adapter.implementations()]
    assert len(names) == len(set(names)), names


@pytest.mark.parametrize(
    "name, second",
    [
        ("cross_entropy", LABELS),
        ("softmax_with_cross_entropy", LABELS),
        ("nll_loss(log_softmax)", LABELS),
        ("cross_entropy[soft_label]", np.eye(3)[LABELS]),
    ],
)
def test_reproduces_document_rel1(impls: dict, adapter: PaddleAdapter, name: str, second) -> None:
    """documents/001 prints rel1 = [0.02215516 3.09967351] from float32: float64 agrees to that precision."""
    value, _ = _call(adapter, impls[name], LOGITS, second)
    assert value.shape == (2,)  # one value per sample: the adapter squeezes paddle's [N, 1]
    printed = np.array(REL1_PRINTED)
    # half a unit of the 8th decimal, or one float32 ulp (the printing framework's dtype), whichever is larger
    precision = np.maximum(0.5e-8, np.spacing(printed.astype(np.float32)).astype(np.float64))
    assert np.all(np.abs(value - printed) <= precision), (value, printed)


@pytest.mark.parametrize("name", ["binary_cross_entropy", "cross_entropy(use_softmax=False)[soft_label]"])
def test_reproduces_document_000_cross_entropy(impls: dict, adapter: PaddleAdapter, name: str) -> None:
    """documents/000: true label's output 0.6 gives -log 0.6 = 0.51; output 0.1 gives 2.30."""
    if name == "binary_cross_entropy":
        value, _ = _call(adapter, impls[name], np.array([0.6, 0.1]), np.ones(2))
    else:  # the true label is index 2 of [0.1, 0.3, 0.6], then index 0 of [0.1, 0.3, 0.6]
        probs = np.array([[0.1, 0.3, 0.6], [0.1, 0.3, 0.6]])
        value, _ = _call(adapter, impls[name], probs, np.eye(3)[[2, 0]])
    assert [f"{v:.2f}" for v in value] == ["0.51", "2.30"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_impl_keeps_dtype_and_shape(impls: dict, adapter: PaddleAdapter, dtype: str) -> None:
    probs = np.array([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
    onehot = np.eye(3)[LABELS]
    inputs = {
        "sparse_softmax_cross_entropy": (LOGITS, LABELS), "softmax_cross_entropy": (LOGITS, onehot),
        "categorical_cross_entropy": (probs, onehot), "sigmoid_cross_entropy": (LOGITS, onehot),
        "binary_cross_entropy": (probs, onehot), "mean_squared_error": (LOGITS, onehot),
        "mean_absolute_error": (LOGITS, onehot), "kl_divergence": (np.log(probs), onehot),
        "softmax": (LOGITS, None), "log_softmax": (LOGITS, None), "sigmoid": (LOGITS, None),
        "smooth_labels": (onehot, None),
    }
    want = numpy_dtype(dtype)
    for impl in impls.values():
        first, second = inputs[impl.loss]
        if second is not None and second.dtype.kind == "f":
            second = second.astype(want)
        params = {"label_smoothing": 0.1} if "label_smoothing" in impl.params else {}
        for reduction in impl.reductions:
            value, grad = _call(adapter, impl, first, second, dtype, **{**params, "reduction": reduction})
            assert value.dtype == want, (impl.name, reduction, value.dtype)
            assert grad is not None and grad.dtype == want and grad.shape == first.shape, impl.name
            if reduction != "none":
                assert value.shape == (), (impl.name, reduction, value.shape)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_cpu_really_lacks_half_precision(impls: dict, adapter: PaddleAdapter, dtype: str) -> None:
    """The declaration 'float32/float64 only on CPU' is true: a half-precision call raises."""
    if not adapter.device.startswith("cpu"):
        pytest.skip("half precision is declared on GPU")
    impl = impls["cross_entropy"]
    assert dtype not in impl.dtypes
    with pytest.raises(RuntimeError, match="not registered"):
        _call(adapter, impl, LOGITS, LABELS, dtype)


def test_binary_cross_entropy_follows_declared_log_clamp(impls: dict, adapter: PaddleAdapter) -> None:
    """Each log term is clamped to >= -100, so p = 0 with target 1 costs exactly 100."""
    impl = impls["binary_cross_entropy"]
    assert impl.variant == "log_clamp_-100"
    value, _ = _call(adapter, impl, np.array([0.0, 1.0]), np.array([1.0, 0.0]), "float32")
    assert value.tolist() == [100.0, 100.0]


def test_all_ignored_mean_is_zero_as_declared(impls: dict, adapter: PaddleAdapter) -> None:
    """Declared variant all_ignored_zero: mean over no kept label is 0, not NaN."""
    impl = impls["cross_entropy"]
    assert impl.variant == "all_ignored_zero"
    value, grad = _call(adapter, impl, LOGITS, np.array([1, 1]), reduction="mean", ignore_index=1)
    assert value.item() == 0.0 and not grad.any()


def test_hard_labels_any_class_axis(impls: dict, adapter: PaddleAdapter) -> None:
    """cross_entropy takes the class axis as a parameter: axis=1 on [N, C, d] equals classes-last rows."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 3, 4))
    y = rng.integers(0, 3, size=(2, 4))
    value3, grad3 = _call(adapter, impls["cross_entropy"], x, y, axis=1)
    rows = x.transpose(0, 2, 1).reshape(-1, 3)
    value2, grad2 = _call(adapter, impls["cross_entropy"], rows, y.reshape(-1))
    # a few float64 ulps apart (different kernels); a wrong axis would differ by O(1)
    np.testing.assert_allclose(value3.reshape(-1), value2, rtol=1e-14)
    np.testing.assert_allclose(grad3.transpose(0, 2, 1).reshape(-1, 3), grad2, rtol=1e-14)


def test_environment_names_device_and_flags(adapter: PaddleAdapter) -> None:
    env = adapter.environment()
    assert env["framework"] == "paddle" and env["version"].startswith(("2.", "3."))
    assert env["device"] == "cpu" or env["device"].startswith("gpu")
    assert "FLAGS_use_onednn" in env or "FLAGS_use_mkldnn" in env
