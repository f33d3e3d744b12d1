"""TensorFlow adapter: framework-specific checks, run in the adapter's worker process.

The pytest process never imports TensorFlow (frameworks crash when imported together): calls go
through the ``framework`` fixture (tests/conftest.py); framework-level probes are module-level
``_helper(adapter, ...)`` functions that ``fw.run`` executes in the worker.

Expected numbers come from the tutorial documents (printed values at their printed precision), from
the declared variant's citation or from closed forms, never from TensorFlow itself.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
from adapter_checks import CTC_INPUTS

from lossconf.reference.dtypes import DTYPES, numpy_dtype

# documents/001: TensorFlow printed these for float32 inputs
LOGITS = np.array([[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]])
LABELS = np.array([2, 1])
ONEHOT = np.eye(3)[LABELS]
SOFT = np.array([[0.4, 0.1, 0.5], [0.3, 0.6, 0.1]])
REL1_PRINTED = ["0.02215516", "3.09967351"]
REL4_PRINTED = ["2.17215538", "2.76967359"]
F32 = "float32"


@pytest.fixture(scope="module")
def fw(framework):
    return framework("tensorflow")


def test_table_names_are_unique(fw) -> None:
    names = [i["name"] for i in fw.describe["implementations"]]
    assert len(names) == len(set(names)), names


def test_version_environment_and_flush_declaration(fw) -> None:
    env = fw.describe["environment"]
    assert env["version"] != "unknown" and env["flags"]["keras_backend"] == "tensorflow"
    assert bool(fw.describe["flushes_subnormals"]) is (env["device"].upper().startswith("/CPU"))


def _subnormal_products(adapter) -> dict:
    """Products of two normal numbers whose exact value is subnormal, computed by TensorFlow."""
    import tensorflow as tf

    with tf.device(adapter.device):
        return {dt: float(tf.constant(a, dt) * tf.constant(a, dt))
                for dt, a in (("float32", 1e-20), ("float64", 1e-160), ("float16", 2.0**-10))}


def test_cpu_flushes_subnormal_results_to_zero(fw) -> None:
    """Evidence for flushes_subnormals: 1e-20^2 = 1e-40 (float32) and 1e-160^2 = 1e-320 (float64) are
    subnormal and come back 0; float16 runs in float32, so 2^-20 (a float16 subnormal) survives."""
    if not fw.describe["flushes_subnormals"]:
        pytest.skip("adapter does not declare flush-to-zero on this device")
    got = fw.run("test_adapter_tensorflow:_subnormal_products")
    assert got["float32"] == 0.0 and got["float64"] == 0.0
    assert got["float16"] == 2.0**-20
    assert set(fw.describe["flush_dtypes"]) == {"bfloat16", "float32", "float64"}  # not float16


@pytest.mark.parametrize(
    "name, second",
    [("softmax_cross_entropy_with_logits", ONEHOT), ("sparse_softmax_cross_entropy_with_logits", LABELS),
     ("CategoricalCrossentropy(from_logits)", ONEHOT), ("SparseCategoricalCrossentropy(from_logits)", LABELS)],
)
def test_reproduces_document_rel1_and_rel5(fw, name: str, second) -> None:
    """documents/001 prints rel1 (dense) and rel5 (sparse) = [0.02215516 3.09967351] in float32."""
    if second.dtype.kind == "f":
        second = second.astype(np.float32)
    value, _ = fw.call(name, F32, LOGITS.astype(np.float32), second)
    assert [f"{v:.8f}" for v in value] == REL1_PRINTED


def test_reproduces_document_rel4_soft_labels(fw) -> None:
    """documents/001 prints rel4 = [2.17215538 2.76967359] for soft labels."""
    value, _ = fw.call("softmax_cross_entropy_with_logits", F32, LOGITS.astype(np.float32), SOFT.astype(np.float32))
    assert [f"{v:.8f}" for v in value] == REL4_PRINTED


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_impl_keeps_dtype_and_shape(fw, dtype: str) -> None:
    """Keras computes in the dtype under test (dtype=), not its float32 default; shapes as declared."""
    probs = np.array([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
    inputs = {
        "softmax_cross_entropy": (LOGITS, ONEHOT), "sparse_softmax_cross_entropy": (LOGITS, LABELS),
        "sigmoid_cross_entropy": (LOGITS, ONEHOT), "binary_cross_entropy": (probs, ONEHOT),
        "categorical_cross_entropy": (probs, ONEHOT), "mean_squared_error": (LOGITS, probs),
        "mean_absolute_error": (LOGITS, probs), "kl_divergence": (probs, probs[::-1].copy()),
        "softmax": (LOGITS, None), "log_softmax": (LOGITS, None), "sigmoid": (LOGITS, None),
        "huber": (LOGITS, probs), "log_cosh": (LOGITS, probs), "hinge": (LOGITS, 2 * ONEHOT - 1),
        "squared_hinge": (LOGITS, 2 * ONEHOT - 1), "poisson_nll": (probs, 3 * ONEHOT),
        "sigmoid_focal_loss": (LOGITS, ONEHOT), "cosine_similarity": (LOGITS, probs),
        "ctc": CTC_INPUTS,
    }
    nd = numpy_dtype(dtype)
    for impl in fw.describe["implementations"]:
        # several inputs: tests/test_adapter_linear.py; a declared-unsupported dtype is not called
        if impl["loss"] == "linear_cross_entropy" or dtype not in impl["dtypes"]:
            continue
        first, second = inputs[impl["loss"]]
        if second is not None and second.dtype.kind == "f":
            second = second.astype(nd)
        rates = impl["loss"] == "kl_divergence" or impl["name"] == "Poisson"
        params = {"log_input": False} if rates else {}
        value, grad = fw.call(impl["name"], dtype, first.astype(nd), second, params)
        assert value.dtype == nd and grad.dtype == nd, (impl["name"], value.dtype, grad.dtype)
        assert grad.shape == first.shape, impl["name"]


def test_keras_elementwise_none_is_per_element(fw) -> None:
    """MSE 'none' is elementwise (x - y)^2, 'mean' the mean over all elements, 'sum' their sum."""
    x, y = np.array([[1.0, 2.0], [3.0, 5.0]]), np.zeros((2, 2))
    value, _ = fw.call("MeanSquaredError", "float64", x, y)
    assert value.tolist() == [[1.0, 4.0], [9.0, 25.0]]
    mean, grad = fw.call("MeanSquaredError", "float64", x, y, {"reduction": "mean"})
    assert float(mean) == 39.0 / 4 and grad.tolist() == [[0.5, 1.0], [1.5, 2.5]]
    total, _ = fw.call("MeanSquaredError", "float64", x, y, {"reduction": "sum"})
    assert float(total) == 39.0


@pytest.mark.parametrize("name", ["MeanSquaredError", "MeanAbsoluteError"])
def test_keras_elementwise_broadcasts_a_row_target(fw, name: str) -> None:
    """A [C] target broadcasts over [N, C] first for every reduction (was an InvalidArgumentError)."""
    x, row = np.array([[1.0, -2.0], [0.0, 4.0]]), np.array([0.5, -1.0])
    value, grad = fw.call(name, "float64", x, row)
    diff = x - row
    assert value.tolist() == (diff**2 if name == "MeanSquaredError" else np.abs(diff)).tolist()
    assert grad.shape == x.shape


def test_bce_probs_follows_clip_variant(fw) -> None:
    """Declared variant clip_probabilities_1e-7: p = 0 under z = 1 costs -log(1e-7), not inf."""
    assert fw.impls["BinaryCrossentropy(probs)"]["variant"] == "clip_probabilities_1e-7"
    value, _ = fw.call("BinaryCrossentropy(probs)", "float64", np.array([0.0]), np.array([1.0]))
    assert f"{value[0]:.6f}" == f"{-math.log(1e-7):.6f}"


def test_cce_probs_normalizes_then_clips(fw) -> None:
    """Declared variant normalize_then_clip_1e-7: [0.2, 0.3, 0.5] * 2 gives the loss of [0.2, 0.3, 0.5]."""
    value, _ = fw.call("CategoricalCrossentropy(probs)", "float64", np.array([[0.4, 0.6, 1.0]]),
                       np.array([[0.0, 0.0, 1.0]]))
    assert f"{value[0]:.12f}" == f"{-math.log(0.5):.12f}"


def test_bce_logits_label_smoothing_is_binary(fw) -> None:
    """BinaryCrossentropy smooths z to z (1 - eps) + eps / 2: at x = 0 the gradient is 1/2 - z'."""
    _, grad = fw.call("BinaryCrossentropy(from_logits)", "float64", np.array([0.0]), np.array([1.0]),
                      {"label_smoothing": 0.2})
    assert grad[0] == pytest.approx(0.5 - (1 - 0.2 + 0.1), abs=1e-15)


def test_sparse_ignore_class_masks_and_means_over_kept(fw) -> None:
    """ignore_class: the ignored sample is 0 and 'mean' divides by the kept count (1)."""
    name, labels = "SparseCategoricalCrossentropy(from_logits)", np.array([2, -100])
    values, grad = fw.call(name, F32, LOGITS.astype(np.float32), labels, {"ignore_index": -100})
    assert values[1] == 0.0 and not grad[1].any()
    mean, _ = fw.call(name, F32, LOGITS.astype(np.float32), labels, {"reduction": "mean", "ignore_index": -100})
    assert f"{float(mean):.8f}" == REL1_PRINTED[0]


def test_known_weighted_ce_grad_at_zero_logit(fw) -> None:
    """Known deviation: d/dx at x = 0 with z = 1, pos_weight 1 is sigmoid(0) - 1 = -1/2; TF returns 0."""
    _, grad = fw.call("weighted_cross_entropy_with_logits", "float64", np.array([0.0]), np.array([1.0]))
    assert grad[0] == 0.0  # correct value is -0.5; see lossconf/known/tensorflow.toml


def test_known_sparse_labels_rounded_in_bfloat16(fw) -> None:
    """Known deviation: Keras casts labels to bfloat16, so label 257 becomes 256 (a different class)."""
    x = np.zeros((1, 300), dtype=ml_dtypes.bfloat16)
    x[0, 257] = 5.0
    value, _ = fw.call("SparseCategoricalCrossentropy(from_logits)", "bfloat16", x, np.array([257]))
    correct = math.log(math.exp(5.0) + 299) - 5.0  # about 1.1
    assert float(value[0]) > correct + 4  # it scored class 256 (logit 0): log(e^5 + 299) = 6.1


def test_known_keras_cce_probs_sums_a_middle_class_axis_in_order(fw) -> None:
    """Known deviation: 1000 equal probabilities fl16(1e-3) as targets and predictions along axis 1 in float16.
    TensorFlow sums the classes one by one in float16 (sum(p) = 0.9785, not 1.0004), and the loss too; the
    term-by-term rendition gives 7.527 where the truth is 1.0004 log(1000) = 6.9105. Along the last axis it is
    within a few ulp."""
    h = np.float16
    p = np.full((1, 1000, 2), 1e-3).astype(h)
    total = h(0)
    for v in p[0, :, 0]:
        total = h(total + v)
    term, loss = h(p[0, 0, 0] * h(np.log(h(p[0, 0, 0] / total)))), h(0)
    for _ in range(1000):
        loss = h(loss - term)
    value, _ = fw.call("CategoricalCrossentropy(probs)", "float16", p, p, {"axis": 1})
    assert np.all(np.abs(value.astype(np.float64) - float(loss)) <= 2 * float(np.spacing(loss)))
    truth = 1000 * float(h(1e-3)) * math.log(1000)
    assert float(loss) - truth > 0.5  # see lossconf/known/tensorflow.toml keras-tf-cce-probs-class-sums-in-order
    last, _ = fw.call("CategoricalCrossentropy(probs)", "float16", np.moveaxis(p, 1, -1), np.moveaxis(p, 1, -1))
    assert np.all(np.abs(last.astype(np.float64) - truth) <= 4 * float(np.spacing(h(truth))))


def test_known_keras_empty_batch_is_not_reduced(fw) -> None:
    """Known deviation: Keras's reduce_values returns the (0,)-shaped values of an empty batch unreduced,
    so 'sum' is an empty array instead of the scalar 0."""
    empty = np.zeros((0,), np.float32)
    value, _ = fw.call("BinaryCrossentropy(from_logits)", F32, empty, empty, {"reduction": "sum"})
    assert value.shape == (0,)  # a scalar is expected; see lossconf/known/keras.toml
