"""TensorFlow adapter: framework-specific checks (run in its own process: pytest tests/test_adapter_tensorflow.py).

Expected numbers come from the tutorial documents (printed values at their printed precision), from
the declared variant's citation or from closed forms, never from TensorFlow itself.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

from lossconf.adapters.tensorflow import TensorFlowAdapter
from lossconf.reference.dtypes import DTYPES, numpy_dtype

# documents/001: TensorFlow printed these for float32 inputs
LOGITS = np.array([[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]])
LABELS = np.array([2, 1])
ONEHOT = np.eye(3)[LABELS]
SOFT = np.array([[0.4, 0.1, 0.5], [0.3, 0.6, 0.1]])
REL1_PRINTED = ["0.02215516", "3.09967351"]
REL4_PRINTED = ["2.17215538", "2.76967359"]


@pytest.fixture(scope="module")
def adapter() -> TensorFlowAdapter:
    pytest.importorskip("tensorflow", reason="tensorflow is not installed (pip install 'lossconf[tensorflow]')")
    a = TensorFlowAdapter()
    a.load()
    return a


@pytest.fixture(scope="module")
def impls(adapter: TensorFlowAdapter) -> dict:
    return {i.name: i for i in adapter.implementations()}


def none(**params) -> dict:
    return {"reduction": "none", **params}


def test_table_names_are_unique(adapter: TensorFlowAdapter) -> None:
    names = [i.name for i in adapter.implementations()]
    assert len(names) == len(set(names)), names


def test_version_and_environment(adapter: TensorFlowAdapter) -> None:
    env = adapter.environment()
    assert env["version"] != "unknown" and env["keras_backend"] == "tensorflow"


@pytest.mark.parametrize(
    "name, second",
    [("softmax_cross_entropy_with_logits", ONEHOT), ("sparse_softmax_cross_entropy_with_logits", LABELS),
     ("CategoricalCrossentropy(from_logits)", ONEHOT), ("SparseCategoricalCrossentropy(from_logits)", LABELS)],
)
def test_reproduces_document_rel1_and_rel5(impls: dict, adapter: TensorFlowAdapter, name: str, second) -> None:
    """documents/001 prints rel1 (dense) and rel5 (sparse) = [0.02215516 3.09967351] in float32."""
    if second.dtype.kind == "f":
        second = second.astype(np.float32)
    value, _ = adapter.value_and_grad(impls[name], LOGITS.astype(np.float32), second, none(), "float32")
    assert [f"{v:.8f}" for v in value] == REL1_PRINTED


def test_reproduces_document_rel4_soft_labels(impls: dict, adapter: TensorFlowAdapter) -> None:
    """documents/001 prints rel4 = [2.17215538 2.76967359] for soft labels."""
    impl = impls["softmax_cross_entropy_with_logits"]
    value, _ = adapter.value_and_grad(impl, LOGITS.astype(np.float32), SOFT.astype(np.float32), none(), "float32")
    assert [f"{v:.8f}" for v in value] == REL4_PRINTED


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_impl_keeps_dtype_and_shape(impls: dict, adapter: TensorFlowAdapter, dtype: str) -> None:
    """Keras computes in the dtype under test (dtype=), not its float32 default; shapes as declared."""
    probs = np.array([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
    inputs = {
        "softmax_cross_entropy": (LOGITS, ONEHOT), "sparse_softmax_cross_entropy": (LOGITS, LABELS),
        "sigmoid_cross_entropy": (LOGITS, ONEHOT), "binary_cross_entropy": (probs, ONEHOT),
        "categorical_cross_entropy": (probs, ONEHOT), "mean_squared_error": (LOGITS, probs),
        "mean_absolute_error": (LOGITS, probs), "kl_divergence": (probs, probs[::-1].copy()),
        "softmax": (LOGITS, None), "log_softmax": (LOGITS, None), "sigmoid": (LOGITS, None),
    }
    nd = numpy_dtype(dtype)
    for impl in impls.values():
        first, second = inputs[impl.loss]
        if second is not None and second.dtype.kind == "f":
            second = second.astype(nd)
        params = none(log_input=False) if impl.loss == "kl_divergence" else none()
        value, grad = adapter.value_and_grad(impl, first.astype(nd), second, params, dtype)
        assert value.dtype == nd and grad.dtype == nd, (impl.name, value.dtype, grad.dtype)
        assert grad.shape == first.shape, impl.name


def test_keras_elementwise_none_is_per_element(impls: dict, adapter: TensorFlowAdapter) -> None:
    """MSE 'none' is elementwise (x - y)^2, 'mean' the mean over all elements, 'sum' their sum."""
    impl = impls["MeanSquaredError"]
    x, y = np.array([[1.0, 2.0], [3.0, 5.0]]), np.zeros((2, 2))
    value, _ = adapter.value_and_grad(impl, x, y, none(), "float64")
    assert value.tolist() == [[1.0, 4.0], [9.0, 25.0]]
    mean, grad = adapter.value_and_grad(impl, x, y, {"reduction": "mean"}, "float64")
    assert float(mean) == 39.0 / 4 and grad.tolist() == [[0.5, 1.0], [1.5, 2.5]]
    total, _ = adapter.value_and_grad(impl, x, y, {"reduction": "sum"}, "float64")
    assert float(total) == 39.0


def test_bce_probs_follows_clip_variant(impls: dict, adapter: TensorFlowAdapter) -> None:
    """Declared variant clip_probabilities_1e-7: p = 0 under z = 1 costs -log(1e-7), not inf."""
    impl = impls["BinaryCrossentropy(probs)"]
    assert impl.variant == "clip_probabilities_1e-7"
    value, _ = adapter.value_and_grad(impl, np.array([0.0]), np.array([1.0]), none(), "float64")
    assert f"{value[0]:.6f}" == f"{-math.log(1e-7):.6f}"


def test_cce_probs_normalizes_then_clips(impls: dict, adapter: TensorFlowAdapter) -> None:
    """Declared variant normalize_then_clip_1e-7: [0.2, 0.3, 0.5] * 2 gives the loss of [0.2, 0.3, 0.5]."""
    impl = impls["CategoricalCrossentropy(probs)"]
    value, _ = adapter.value_and_grad(impl, np.array([[0.4, 0.6, 1.0]]), np.array([[0.0, 0.0, 1.0]]),
                                      none(), "float64")
    assert f"{value[0]:.12f}" == f"{-math.log(0.5):.12f}"


def test_bce_logits_label_smoothing_is_binary(impls: dict, adapter: TensorFlowAdapter) -> None:
    """BinaryCrossentropy smooths z to z (1 - eps) + eps / 2: at x = 0 the gradient is 1/2 - z'."""
    impl = impls["BinaryCrossentropy(from_logits)"]
    _, grad = adapter.value_and_grad(impl, np.array([0.0]), np.array([1.0]), none(label_smoothing=0.2), "float64")
    assert grad[0] == pytest.approx(0.5 - (1 - 0.2 + 0.1), abs=1e-15)


def test_sparse_ignore_class_masks_and_means_over_kept(impls: dict, adapter: TensorFlowAdapter) -> None:
    """ignore_class: the ignored sample is 0 and 'mean' divides by the kept count (1)."""
    impl = impls["SparseCategoricalCrossentropy(from_logits)"]
    labels = np.array([2, -100])
    values, grad = adapter.value_and_grad(impl, LOGITS.astype(np.float32), labels, none(ignore_index=-100), "float32")
    assert values[1] == 0.0 and not grad[1].any()
    mean, _ = adapter.value_and_grad(impl, LOGITS.astype(np.float32), labels,
                                     {"reduction": "mean", "ignore_index": -100}, "float32")
    assert f"{float(mean):.8f}" == REL1_PRINTED[0]


def test_known_weighted_ce_grad_at_zero_logit(impls: dict, adapter: TensorFlowAdapter) -> None:
    """Known deviation: d/dx at x = 0 with z = 1, pos_weight 1 is sigmoid(0) - 1 = -1/2; TF returns 0."""
    impl = impls["weighted_cross_entropy_with_logits"]
    _, grad = adapter.value_and_grad(impl, np.array([0.0]), np.array([1.0]), none(), "float64")
    assert grad[0] == 0.0  # correct value is -0.5; see lossconf/known/tensorflow.toml


def test_known_sparse_labels_rounded_in_bfloat16(impls: dict, adapter: TensorFlowAdapter) -> None:
    """Known deviation: Keras casts labels to bfloat16, so label 257 becomes 256 (a different class)."""
    x = np.zeros((1, 300), dtype=ml_dtypes.bfloat16)
    x[0, 257] = 5.0
    value, _ = adapter.value_and_grad(impls["SparseCategoricalCrossentropy(from_logits)"], x, np.array([257]),
                                      none(), "bfloat16")
    correct = math.log(math.exp(5.0) + 299) - 5.0  # about 1.1
    assert float(value[0]) > correct + 4  # it scored class 256 (logit 0): log(e^5 + 299) = 6.1
