"""Shared inputs and checks for the tests/test_adapter_<name>.py of the newer adapters (MLX, tinygrad,
ONNX Runtime, SciPy, scikit-learn). Framework code never runs here: ``fw`` is a worker-backed
``FrameworkProcess`` (tests/conftest.py), and the ``*_in_worker`` functions run inside that worker."""

from __future__ import annotations

import ml_dtypes
import numpy as np

from lossconf.reference.dtypes import numpy_dtype

# documents/001 (TensorFlow tutorial): logits, labels and the printed rel1 (float32, 8 decimals)
LOGITS = np.array([[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]])
LABELS = np.array([2, 1])
ONEHOT = np.eye(3)[LABELS]
REL1_PRINTED = [0.02215516, 3.09967351]
PROBS = np.array([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
INPUTS = {  # a small valid (first, second) per catalog loss
    "sparse_softmax_cross_entropy": (LOGITS, LABELS), "softmax_cross_entropy": (LOGITS, ONEHOT),
    "sigmoid_cross_entropy": (LOGITS, ONEHOT), "binary_cross_entropy": (PROBS, ONEHOT),
    "categorical_cross_entropy": (PROBS, ONEHOT), "mean_squared_error": (LOGITS, PROBS),
    "mean_absolute_error": (LOGITS, PROBS), "root_mean_squared_error": (LOGITS, PROBS),
    "kl_divergence": (PROBS, PROBS[::-1].copy()), "softmax": (LOGITS, None), "log_softmax": (LOGITS, None),
    "sigmoid": (LOGITS, None),
}
# CTC: logits [N = 2, T = 3, C = 4] and labels [N, S = 2]; (3, 3) needs all three frames (3, blank, 3)
CTC_INPUTS = (np.arange(24.0).reshape(2, 3, 4) % 5 - 2, np.array([[1, 2], [3, 3]]))
EXACT_BFLOAT16 = np.array([1.0, -3.140625, 1e-30, 3.0e38, np.inf], dtype=ml_dtypes.bfloat16)


def round_trip_in_worker(adapter, x: np.ndarray, dtype: str) -> np.ndarray:
    """``x`` to a framework tensor of ``dtype`` and back (runs in the worker)."""
    return adapter.numpy(adapter.tensor(x, dtype))


def unsupported_reason_in_worker(adapter, impl_name: str, params: dict, shape: tuple,
                                 second_shape: tuple | None = None, dtype: str = "float32") -> str | None:
    """The implementation's own reason for leaving (params, shapes) out, or None (runs in the worker)."""
    impl = next(i for i in adapter.implementations() if i.name == impl_name)
    return impl.unsupported_reason(dtype, {"reduction": "none", **params}, shape, second_shape)


def assert_names_unique(fw) -> None:
    """Every implementation row has its own name (the report and known deviations key on it)."""
    names = [i["name"] for i in fw.describe["implementations"]]
    assert len(names) == len(set(names)), names


def assert_round_trip_exact(fw, module: str, values: np.ndarray, dtype: str) -> None:
    """Values survive the trip to a framework tensor and back bit for bit, in their dtype."""
    back = fw.run(f"{module}:round_trip_in_worker", values, dtype)
    assert back.dtype == values.dtype, back.dtype
    assert back.tobytes() == values.tobytes()


def assert_keeps_dtype_and_shape(fw, dtype: str) -> None:
    """Every implementation declaring ``dtype`` returns its value (and gradient, where it has one) in
    that dtype; the gradient has the shape of ``first``; reduced values are scalars."""
    want = numpy_dtype(dtype)
    for name, impl in fw.impls.items():
        if dtype not in impl["dtypes"]:
            continue
        first, second = INPUTS[impl["loss"]]
        first = first.astype(want)
        if second is not None and second.dtype.kind == "f":
            second = second.astype(want)
        params = {"log_input": False} if "log_input" in impl["params"] else {}
        for reduction in impl["reductions"]:
            value, grad = fw.call(name, dtype, first, second, {**params, "reduction": reduction})
            assert value.dtype == want, (name, reduction, value.dtype)
            if impl["grad"]:
                assert grad is not None and grad.dtype == want and grad.shape == first.shape, name
            else:
                assert grad is None, name
            if reduction != "none":
                assert value.shape == (), (name, reduction, value.shape)
