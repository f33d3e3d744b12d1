"""PyTorch adapter: framework-specific checks (run in its own process: pytest tests/test_adapter_torch.py).

Expected numbers come from the tutorial documents (printed values at their printed precision) or from
the declared variant's citation, never from torch itself.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from lossconf.adapters.torch import TorchAdapter
from lossconf.reference.dtypes import DTYPES, numpy_dtype

# documents/001 (TensorFlow tutorial): logits, one-hot labels and the printed rel1
LOGITS = np.array([[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]])
LABELS = np.array([2, 1])
REL1_PRINTED = ["0.02215516", "3.09967351"]  # print("rel1=", ...) in float32, 8 decimals


@pytest.fixture(scope="module")
def adapter() -> TorchAdapter:
    pytest.importorskip("torch", reason="torch is not installed (pip install 'lossconf[torch]')")
    a = TorchAdapter()
    a.load()
    return a


@pytest.fixture(scope="module")
def impls(adapter: TorchAdapter) -> dict:
    return {i.name: i for i in adapter.implementations()}


def test_table_names_are_unique(adapter: TorchAdapter) -> None:
    names = [i.name for i in adapter.implementations()]
    assert len(names) == len(set(names)), names


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss(log_softmax)"])
def test_reproduces_document_rel1_float32(impls: dict, adapter: TorchAdapter, name: str) -> None:
    """documents/001 prints rel1 = [0.02215516 3.09967351] from float32 softmax cross-entropy."""
    value, _ = adapter.value_and_grad(
        impls[name], LOGITS.astype(np.float32), LABELS, {"reduction": "none"}, "float32"
    )
    assert [f"{v:.8f}" for v in value] == REL1_PRINTED


def test_reproduces_document_binary_cross_entropy(impls: dict, adapter: TorchAdapter) -> None:
    """documents/000: output 0.6 for the true label gives -log 0.6 = 0.51, output 0.1 gives 2.30."""
    p = np.array([0.6, 0.1])
    value, _ = adapter.value_and_grad(impls["binary_cross_entropy"], p, np.ones(2), {"reduction": "none"}, "float64")
    assert [f"{v:.2f}" for v in value] == ["0.51", "2.30"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_impl_keeps_dtype_and_shape(impls: dict, adapter: TorchAdapter, dtype: str) -> None:
    """Value in the input dtype; gradient in the input dtype and shape of ``first``."""
    probs = np.array([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
    onehot = np.eye(3)[LABELS]
    inputs = {
        "sparse_softmax_cross_entropy": (LOGITS, LABELS), "softmax_cross_entropy": (LOGITS, onehot),
        "sigmoid_cross_entropy": (LOGITS, onehot), "binary_cross_entropy": (probs, onehot),
        "mean_squared_error": (LOGITS, onehot), "mean_absolute_error": (LOGITS, onehot),
        "kl_divergence": (np.log(probs), onehot), "softmax": (LOGITS, None), "log_softmax": (LOGITS, None),
        "sigmoid": (LOGITS, None),
    }
    want = numpy_dtype(dtype)
    for impl in impls.values():
        first, second = inputs[impl.loss]
        first = first.astype(want)
        if second is not None and second.dtype.kind == "f":
            second = second.astype(want)
        for reduction in impl.reductions:
            value, grad = adapter.value_and_grad(impl, first, second, {"reduction": reduction}, dtype)
            assert value.dtype == want, (impl.name, reduction, value.dtype)
            assert grad is not None and grad.dtype == want and grad.shape == first.shape, impl.name
            if reduction != "none":
                assert value.shape == (), (impl.name, reduction, value.shape)


def test_bfloat16_round_trip_is_exact(adapter: TorchAdapter) -> None:
    values = np.array([1.0, -3.140625, 1e-30, 3.0e38, np.inf], dtype=ml_dtypes.bfloat16)
    back = adapter.numpy(adapter.tensor(values, "bfloat16"))
    assert back.dtype == np.dtype(ml_dtypes.bfloat16)
    assert back.tobytes() == values.tobytes()


def test_binary_cross_entropy_follows_declared_log_clamp(impls: dict, adapter: TorchAdapter) -> None:
    """BCELoss docs: log outputs are clamped to >= -100, so p = 0 with target 1 costs exactly 100."""
    impl = impls["binary_cross_entropy"]
    assert impl.variant == "log_clamp_-100"
    value, _ = adapter.value_and_grad(impl, np.array([0.0, 1.0]), np.array([1.0, 0.0]), {"reduction": "none"},
                                      "float32")
    assert value.tolist() == [100.0, 100.0]


def test_class_axis_restriction(impls: dict) -> None:
    """torch takes classes on axis 1 only: [N, C, d] with axis=-1 is declared unsupported, axis=1 is not."""
    impl = impls["cross_entropy"]
    assert impl.unsupported_reason("float32", {"reduction": "none", "axis": 1}, (2, 3, 4)) is None
    assert "axis 1" in impl.unsupported_reason("float32", {"reduction": "none", "axis": -1}, (2, 3, 4))
    assert impl.unsupported_reason("float32", {"reduction": "none"}, (2, 3)) is None


def test_class_axis_one_matches_flattened_rows(impls: dict, adapter: TorchAdapter) -> None:
    """[N, C, d] with classes on axis 1 gives, per position, the loss of the [N*d, C] rows."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 3, 4))
    y = rng.integers(0, 3, size=(2, 4))
    value3, grad3 = adapter.value_and_grad(impls["cross_entropy"], x, y, {"reduction": "none", "axis": 1},
                                           "float64")
    rows = x.transpose(0, 2, 1).reshape(-1, 3)
    value2, grad2 = adapter.value_and_grad(impls["cross_entropy"], rows, y.reshape(-1), {"reduction": "none"},
                                           "float64")
    # a few float64 ulps apart (different kernels); a wrong axis would differ by O(1)
    np.testing.assert_allclose(value3.reshape(-1), value2, rtol=1e-14)
    np.testing.assert_allclose(grad3.transpose(0, 2, 1).reshape(-1, 3), grad2, rtol=1e-14)


def test_kl_div_mean_is_per_sample(impls: dict) -> None:
    """'batchmean' is the per-sample mean only for [N, C]; other ranks are declared unsupported."""
    impl = impls["kl_div"]
    assert "none" not in impl.reductions
    assert impl.unsupported_reason("float32", {"reduction": "mean"}, (2, 3)) is None
    assert impl.unsupported_reason("float32", {"reduction": "mean"}, (2, 3, 4)) is not None
    assert impl.unsupported_reason("float32", {"reduction": "sum"}, (2, 3, 4)) is None


def test_environment_names_device_and_precision_flags(adapter: TorchAdapter) -> None:
    env = adapter.environment()
    assert env["framework"] == "torch"
    assert env["device"] == "cpu" or env["device"].startswith("cuda")
    for flag in ("float32_matmul_precision", "cuda_matmul_allow_tf32", "deterministic_algorithms"):
        assert flag in env
