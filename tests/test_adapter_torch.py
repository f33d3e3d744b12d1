"""PyTorch adapter: framework-specific checks.

torch is never imported here: calls go to a lossconf worker process (``framework("torch")``), and code
that must touch torch directly runs there as the module-level ``_helpers`` below. Expected numbers come
from the tutorial documents (printed values at their printed precision), from a declared variant's
citation or from arithmetic facts (exp(-100) is a float32 subnormal), never from torch itself.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from adapter_checks import CTC_INPUTS

from lossconf.reference.dtypes import DTYPES, numpy_dtype

# documents/001 (TensorFlow tutorial): logits, one-hot labels and the printed rel1
LOGITS = np.array([[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]])
LABELS = np.array([2, 1])
REL1_PRINTED = ["0.02215516", "3.09967351"]  # print("rel1=", ...) in float32, 8 decimals
PROBS = np.array([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
ONEHOT = np.eye(3)[LABELS]
INPUTS = {  # a small valid (first, second) per catalog loss
    "sparse_softmax_cross_entropy": (LOGITS, LABELS), "softmax_cross_entropy": (LOGITS, ONEHOT),
    "sigmoid_cross_entropy": (LOGITS, ONEHOT), "binary_cross_entropy": (PROBS, ONEHOT),
    "mean_squared_error": (LOGITS, ONEHOT), "mean_absolute_error": (LOGITS, ONEHOT),
    "kl_divergence": (np.log(PROBS), ONEHOT), "softmax": (LOGITS, None), "log_softmax": (LOGITS, None),
    "sigmoid": (LOGITS, None),
    "huber": (LOGITS, ONEHOT), "smooth_l1": (LOGITS, ONEHOT), "log_cosh": (LOGITS, ONEHOT),
    "hinge": (LOGITS, 2 * ONEHOT - 1), "squared_hinge": (LOGITS, 2 * ONEHOT - 1), "poisson_nll": (LOGITS, 3 * ONEHOT),
    "sigmoid_focal_loss": (LOGITS, ONEHOT), "cosine_similarity": (LOGITS, PROBS),
    "ctc": CTC_INPUTS,
}


@pytest.fixture(scope="module")
def fw(framework):
    return framework("torch")


# -- helpers run in the worker: fn(adapter, *args) -------------------------------------------------

def _round_trip(adapter, x: np.ndarray, dtype: str) -> np.ndarray:
    return adapter.numpy(adapter.tensor(x, dtype))


def _unsupported_reason(adapter, impl_name: str, params: dict, shape: tuple) -> str | None:
    impl = next(i for i in adapter.implementations() if i.name == impl_name)
    return impl.unsupported_reason("float32", params, shape)


def _exp(adapter, x: np.ndarray) -> np.ndarray:
    """torch.exp on the adapter's device: an elementwise kernel with no loss code involved."""
    import torch

    return adapter.numpy(torch.exp(adapter.tensor(x, x.dtype.name)))


# -- the table and the environment -----------------------------------------------------------------

def test_table_names_are_unique(fw) -> None:
    names = [i["name"] for i in fw.describe["implementations"]]
    assert len(names) == len(set(names)), names


def test_environment_names_device_and_precision_flags(fw) -> None:
    env = fw.describe["environment"]
    assert env["framework"] == "torch"
    assert env["device"] == "cpu" or env["device"].startswith("cuda")
    for flag in ("float32_matmul_precision", "cuda_matmul_allow_tf32", "deterministic_algorithms"):
        assert flag in env["flags"]


def test_bfloat16_round_trip_is_exact(fw) -> None:
    values = np.array([1.0, -3.140625, 1e-30, 3.0e38, np.inf], dtype=ml_dtypes.bfloat16)
    back = fw.run("test_adapter_torch:_round_trip", values, "bfloat16")
    assert back.dtype == np.dtype(ml_dtypes.bfloat16)
    assert back.tobytes() == values.tobytes()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cpu_keeps_subnormals_so_no_flush_variant_is_declared(fw, dtype: str) -> None:
    """exp(-100) (float32) and exp(-720) (float64) are subnormal; torch returns them, so the adapter
    rightly leaves ``flushes_subnormals`` off. Its zero sigmoid below x = -88.72 is the known
    deviation torch-sigmoid-subnormal-results-zero (exp(-x) overflows in 1 / (1 + exp(-x)))."""
    x = np.array([-100.0 if dtype == "float32" else -720.0], dtype=dtype)
    got = fw.run("test_adapter_torch:_exp", x)
    assert 0 < got[0] < np.finfo(dtype).smallest_normal
    assert fw.describe["flushes_subnormals"] is False


# -- values against the documents and the cited variants -------------------------------------------

@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss(log_softmax)"])
def test_reproduces_document_rel1_float32(fw, name: str) -> None:
    """documents/001 prints rel1 = [0.02215516 3.09967351] from float32 softmax cross-entropy."""
    value, _ = fw.call(name, "float32", LOGITS.astype(np.float32), LABELS)
    assert [f"{v:.8f}" for v in value] == REL1_PRINTED


def test_reproduces_document_binary_cross_entropy(fw) -> None:
    """documents/000: output 0.6 for the true label gives -log 0.6 = 0.51, output 0.1 gives 2.30."""
    value, _ = fw.call("binary_cross_entropy", "float64", np.array([0.6, 0.1]), np.ones(2))
    assert [f"{v:.2f}" for v in value] == ["0.51", "2.30"]


def test_binary_cross_entropy_follows_declared_log_clamp(fw) -> None:
    """BCELoss docs: log outputs are clamped to >= -100, so p = 0 with target 1 costs exactly 100."""
    assert fw.impls["binary_cross_entropy"]["variant"] == "log_clamp_-100"
    value, _ = fw.call("binary_cross_entropy", "float32", np.array([0.0, 1.0], np.float32),
                       np.array([1.0, 0.0], np.float32))
    assert value.tolist() == [100.0, 100.0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_impl_keeps_dtype_and_shape(fw, dtype: str) -> None:
    """Value in the input dtype; gradient in the input dtype and shape of ``first``."""
    want = numpy_dtype(dtype)
    for name, impl in fw.impls.items():
        # several inputs: tests/test_adapter_linear.py; a declared-unsupported dtype is not called
        if impl["loss"] == "linear_cross_entropy" or dtype not in impl["dtypes"]:
            continue
        first, second = INPUTS[impl["loss"]]
        first = first.astype(want)
        if second is not None and second.dtype.kind == "f":
            second = second.astype(want)
        for reduction in impl["reductions"]:
            value, grad = fw.call(name, dtype, first, second, {"reduction": reduction})
            assert value.dtype == want, (name, reduction, value.dtype)
            assert grad is not None and grad.dtype == want and grad.shape == first.shape, name
            if reduction != "none":
                assert value.shape == (), (name, reduction, value.shape)


# -- declared restrictions ---------------------------------------------------------------------------

def test_class_axis_restriction(fw) -> None:
    """torch takes classes on axis 1 only: [N, C, d] with axis=-1 is declared unsupported, axis=1 is not."""
    why = "test_adapter_torch:_unsupported_reason"
    assert fw.run(why, "cross_entropy", {"reduction": "none", "axis": 1}, (2, 3, 4)) is None
    assert "axis 1" in fw.run(why, "cross_entropy", {"reduction": "none", "axis": -1}, (2, 3, 4))
    assert fw.run(why, "cross_entropy", {"reduction": "none"}, (2, 3)) is None


def test_class_axis_one_matches_flattened_rows(fw) -> None:
    """[N, C, d] with classes on axis 1 gives, per position, the loss of the [N*d, C] rows."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 3, 4))
    y = rng.integers(0, 3, size=(2, 4))
    value3, grad3 = fw.call("cross_entropy", "float64", x, y, {"axis": 1})
    rows = x.transpose(0, 2, 1).reshape(-1, 3)
    value2, grad2 = fw.call("cross_entropy", "float64", rows, y.reshape(-1))
    # a few float64 ulps apart (different kernels); a wrong axis would differ by O(1)
    np.testing.assert_allclose(value3.reshape(-1), value2, rtol=1e-14)
    np.testing.assert_allclose(grad3.transpose(0, 2, 1).reshape(-1, 3), grad2, rtol=1e-14)


def test_kl_div_mean_is_per_sample(fw) -> None:
    """'batchmean' is the per-sample mean only for [N, C]; other ranks are declared unsupported."""
    why = "test_adapter_torch:_unsupported_reason"
    assert "none" not in fw.impls["kl_div"]["reductions"]
    assert fw.run(why, "kl_div", {"reduction": "mean"}, (2, 3)) is None
    assert fw.run(why, "kl_div", {"reduction": "mean"}, (2, 3, 4)) is not None
    assert fw.run(why, "kl_div", {"reduction": "sum"}, (2, 3, 4)) is None


def test_this_process_never_imported_torch(fw) -> None:
    """Everything above ran torch in the worker; replies (versions, arrays) unpickle without torch."""
    import sys

    assert fw.describe["environment"]["version"]
    assert "torch" not in sys.modules
