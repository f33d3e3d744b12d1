"""PaddlePaddle adapter: framework-specific checks.

paddle is never imported here: calls go to a lossconf worker process (``framework("paddle")``), and
code that must touch paddle directly runs there as the module-level ``_helpers`` below. Expected
numbers come from the tutorial documents (printed values at their printed precision), from a declared
variant's citation or from arithmetic facts (exp(-100) is a float32 subnormal), never from paddle.
"""

from __future__ import annotations

import numpy as np
import pytest
from adapter_checks import CTC_INPUTS

from lossconf.reference.dtypes import numpy_dtype
from lossconf.supervisor import WorkerFailure

# documents/001 (TensorFlow tutorial): logits, labels and the printed rel1 (float32, 8 decimals)
LOGITS = np.array([[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]])
LABELS = np.array([2, 1])
REL1_PRINTED = [0.02215516, 3.09967351]
PROBS = np.array([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
ONEHOT = np.eye(3)[LABELS]
INPUTS = {  # a small valid (first, second) per catalog loss
    "sparse_softmax_cross_entropy": (LOGITS, LABELS), "softmax_cross_entropy": (LOGITS, ONEHOT),
    "categorical_cross_entropy": (PROBS, ONEHOT), "sigmoid_cross_entropy": (LOGITS, ONEHOT),
    "binary_cross_entropy": (PROBS, ONEHOT), "mean_squared_error": (LOGITS, ONEHOT),
    "mean_absolute_error": (LOGITS, ONEHOT), "kl_divergence": (np.log(PROBS), ONEHOT),
    "softmax": (LOGITS, None), "log_softmax": (LOGITS, None), "sigmoid": (LOGITS, None),
    "smooth_labels": (ONEHOT, None),
    "huber": (LOGITS, ONEHOT), "smooth_l1": (LOGITS, ONEHOT), "log_cosh": (LOGITS, ONEHOT),
    "hinge": (LOGITS, 2 * ONEHOT - 1), "squared_hinge": (LOGITS, 2 * ONEHOT - 1), "poisson_nll": (LOGITS, 3 * ONEHOT),
    "sigmoid_focal_loss": (LOGITS, ONEHOT), "cosine_similarity": (LOGITS, PROBS),
    "ctc": CTC_INPUTS,
}
WHY = "test_adapter_paddle:_unsupported_reason"


@pytest.fixture(scope="module")
def fw(framework):
    return framework("paddle")


def _call(fw, name, first, second=None, dtype="float64", **params):
    return fw.call(name, dtype, first.astype(numpy_dtype(dtype)), second, params)


# -- helpers run in the worker: fn(adapter, *args) -------------------------------------------------

def _unsupported_reason(adapter, impl_name: str, params: dict, shape: tuple) -> str | None:
    impl = next(i for i in adapter.implementations() if i.name == impl_name)
    return impl.unsupported_reason("float64", params, shape)


def _exp(adapter, x: np.ndarray) -> np.ndarray:
    """paddle.exp on the adapter's device: an elementwise kernel with no loss code involved."""
    import paddle

    return adapter.numpy(paddle.exp(adapter.tensor(x, x.dtype.name)))


# -- the table and the environment -----------------------------------------------------------------

def test_table_names_are_unique(fw) -> None:
    names = [i["name"] for i in fw.describe["implementations"]]
    assert len(names) == len(set(names)), names


def test_environment_names_device_and_flags(fw) -> None:
    env = fw.describe["environment"]
    assert env["framework"] == "paddle" and env["version"].startswith(("2.", "3."))
    assert env["device"] == "cpu" or env["device"].startswith("gpu")
    assert "FLAGS_use_onednn" in env["flags"] or "FLAGS_use_mkldnn" in env["flags"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cpu_keeps_subnormals_so_no_flush_variant_is_declared(fw, dtype: str) -> None:
    """exp(-100) (float32) and exp(-720) (float64) are subnormal and paddle returns them, so the
    adapter leaves ``flushes_subnormals`` off; its zero sigmoid below x = -88.72 is the known
    deviation paddle-sigmoid-subnormal-results-zero (exp(-x) overflows in 1 / (1 + exp(-x)))."""
    x = np.array([-100.0 if dtype == "float32" else -720.0], dtype=dtype)
    got = fw.run("test_adapter_paddle:_exp", x)
    assert 0 < got[0] < np.finfo(dtype).smallest_normal
    assert fw.describe["flushes_subnormals"] is False


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_cpu_really_lacks_half_precision(fw, dtype: str) -> None:
    """The declaration 'float32/float64 only on CPU' is true: a half-precision call raises."""
    if not fw.describe["environment"]["device"].startswith("cpu"):
        pytest.skip("half precision is declared on GPU")
    assert dtype not in fw.impls["cross_entropy"]["dtypes"]
    with pytest.raises(WorkerFailure, match="not registered"):
        _call(fw, "cross_entropy", LOGITS, LABELS, dtype)


# -- values against the documents and the cited variants -------------------------------------------

@pytest.mark.parametrize(
    "name, second",
    [
        ("cross_entropy", LABELS),
        ("softmax_with_cross_entropy", LABELS),
        ("nll_loss(log_softmax)", LABELS),
        ("cross_entropy[soft_label]", ONEHOT),
    ],
)
def test_reproduces_document_rel1(fw, name: str, second) -> None:
    """documents/001 prints rel1 = [0.02215516 3.09967351] from float32: float64 agrees to that precision."""
    value, _ = _call(fw, name, LOGITS, second)
    assert value.shape == (2,)  # one value per sample: the adapter squeezes paddle's [N, 1]
    printed = np.array(REL1_PRINTED)
    # half a unit of the 8th decimal, or one float32 ulp (the printing framework's dtype), whichever is larger
    precision = np.maximum(0.5e-8, np.spacing(printed.astype(np.float32)).astype(np.float64))
    assert np.all(np.abs(value - printed) <= precision), (value, printed)


@pytest.mark.parametrize("name", ["binary_cross_entropy", "cross_entropy(use_softmax=False)[soft_label]"])
def test_reproduces_document_000_cross_entropy(fw, name: str) -> None:
    """documents/000: true label's output 0.6 gives -log 0.6 = 0.51; output 0.1 gives 2.30."""
    if name == "binary_cross_entropy":
        value, _ = _call(fw, name, np.array([0.6, 0.1]), np.ones(2))
    else:  # the true label is index 2 of [0.1, 0.3, 0.6], then index 0 of [0.1, 0.3, 0.6]
        probs = np.array([[0.1, 0.3, 0.6], [0.1, 0.3, 0.6]])
        value, _ = _call(fw, name, probs, np.eye(3)[[2, 0]])
    assert [f"{v:.2f}" for v in value] == ["0.51", "2.30"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_impl_keeps_dtype_and_shape(fw, dtype: str) -> None:
    want = numpy_dtype(dtype)
    for name, impl in fw.impls.items():
        first, second = INPUTS[impl["loss"]]
        if second is not None and second.dtype.kind == "f":
            second = second.astype(want)
        params = {"label_smoothing": 0.1} if "label_smoothing" in impl["params"] else {}
        if impl["loss"] == "sigmoid_focal_loss":
            params["alpha"] = 0.25  # paddle always weights by alpha (the row declares alpha=None unsupported)
        for reduction in impl["reductions"]:
            value, grad = _call(fw, name, first, second, dtype, **{**params, "reduction": reduction})
            assert value.dtype == want, (name, reduction, value.dtype)
            assert grad is not None and grad.dtype == want and grad.shape == first.shape, name
            if reduction != "none":
                assert value.shape == (), (name, reduction, value.shape)


def test_binary_cross_entropy_follows_declared_log_clamp(fw) -> None:
    """Each log term is clamped to >= -100, so p = 0 with target 1 costs exactly 100."""
    assert fw.impls["binary_cross_entropy"]["variant"] == "log_clamp_-100"
    value, _ = _call(fw, "binary_cross_entropy", np.array([0.0, 1.0]), np.array([1.0, 0.0], np.float32),
                     "float32")
    assert value.tolist() == [100.0, 100.0]


def test_all_ignored_mean_is_zero_as_declared(fw) -> None:
    """Declared variant all_ignored_zero: mean over no kept label is 0, not NaN."""
    assert fw.impls["cross_entropy"]["variant"] == "all_ignored_zero"
    value, grad = _call(fw, "cross_entropy", LOGITS, np.array([1, 1]), reduction="mean", ignore_index=1)
    assert value.item() == 0.0 and not grad.any()


def test_hard_labels_any_class_axis(fw) -> None:
    """cross_entropy takes the class axis as a parameter: axis=1 on [N, C, d] equals classes-last rows."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 3, 4))
    y = rng.integers(0, 3, size=(2, 4))
    value3, grad3 = _call(fw, "cross_entropy", x, y, axis=1)
    rows = x.transpose(0, 2, 1).reshape(-1, 3)
    value2, grad2 = _call(fw, "cross_entropy", rows, y.reshape(-1))
    # a few float64 ulps apart (different kernels); a wrong axis would differ by O(1)
    np.testing.assert_allclose(value3.reshape(-1), value2, rtol=1e-14)
    np.testing.assert_allclose(grad3.transpose(0, 2, 1).reshape(-1, 3), grad2, rtol=1e-14)


# -- declared restrictions ---------------------------------------------------------------------------

def test_nll_loss_reduced_with_ignore_index_is_declared_unsupported(fw) -> None:
    """nll_loss_kernel.cc writes out_data[i] for each ignored label although a reduced output has one
    element; the adapter never makes that call. 'none' (one output per label) stays supported."""
    base = {"ignore_index": -100}
    assert "heap" in fw.run(WHY, "nll_loss(log_softmax)", {**base, "reduction": "mean"}, (4, 3))
    assert "heap" in fw.run(WHY, "nll_loss(log_softmax)", {**base, "reduction": "sum"}, (4, 3))
    assert fw.run(WHY, "nll_loss(log_softmax)", {**base, "reduction": "none"}, (4, 3)) is None
    assert fw.run(WHY, "nll_loss(log_softmax)", {"reduction": "mean"}, (4, 3)) is None


def test_soft_label_smoothing_needs_classes_last(fw) -> None:
    """label_smooth divides eps by shape[-1]: smoothing with classes on axis 1 of [N, C, d] is declared
    unsupported; without smoothing, or with classes last, the row stays supported."""
    name = "cross_entropy[soft_label]"
    assert "last axis" in fw.run(WHY, name, {"reduction": "none", "label_smoothing": 0.1, "axis": 1}, (4, 3, 2))
    assert fw.run(WHY, name, {"reduction": "none", "axis": 1}, (4, 3, 2)) is None
    assert fw.run(WHY, name, {"reduction": "none", "label_smoothing": 0.1}, (4, 3)) is None


def test_this_process_never_imported_paddle(fw) -> None:
    """Everything above ran paddle in the worker; replies unpickle without paddle."""
    import sys

    assert fw.describe["environment"]["version"]
    assert "paddle" not in sys.modules
