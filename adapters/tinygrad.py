"""tinygrad adapter: the ``Tensor`` loss methods and building blocks.

Conventions a reader should know before the table:
- backend: tinygrad's ``CPU`` device JIT-compiles every kernel, and even its LLVM renderer
  (``DEV=CPU:LLVM``) compiles the device's own queue programs with ``clang`` (``ops_cpu.py``,
  ``CPUDevice.__init__``). Where ``clang`` is on PATH the adapter uses ``DEV=CPU``; otherwise it uses
  ``DEV=PYTHON``, tinygrad's reference interpreter of the same kernels (same graph, same dtype of every
  intermediate, evaluated op by op in Python; slow but exact about what tinygrad computes). A ``DEV``
  already in the environment wins. The choice is in the report's environment. The interpreter runs
  every element through Python (a [64, 1000] cross-entropy with its gradient takes ~20 s), so on the
  PYTHON backend inputs above ``PYTHON_BACKEND_MAX_ELEMENTS`` are declared unsupported with that reason;
- ``sparse_categorical_crossentropy`` takes classes on the last axis; ``ignore_index=-1`` is its
  "nothing ignored" default, so a catalog ignore_index of -1 is outside the API;
- ``cross_entropy`` takes classes on axis 1 (axis 0 for 1-D input), like torch;
- gradients by ``Tensor.gradient`` (the engine behind ``Tensor.backward``) with a cotangent of ones.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import ml_dtypes
import numpy as np

from lossconf.adapters.base import Adapter, Impl
from lossconf.reference.dtypes import numpy_dtype

_SRC = "https://github.com/tinygrad/tinygrad/blob/master/tinygrad/mixin/op.py"
NONE = ("none",)
PYTHON_BACKEND_MAX_ELEMENTS = 4096


def _backend() -> str:
    """DEV when set, else CPU where clang is on PATH, else the PYTHON interpreter (same in every process)."""
    return os.environ.get("DEV") or ("CPU" if shutil.which("clang") else "PYTHON")


def _fits_backend(restrict=None):
    """``restrict`` plus, on the PYTHON backend, a size limit (it interprets every element in Python)."""
    def check(params: dict, shape: tuple, second_shape: tuple | None = None) -> str | None:
        size = int(np.prod(shape))
        if _backend() == "PYTHON" and size > PYTHON_BACKEND_MAX_ELEMENTS:
            return (f"tinygrad's PYTHON backend (no clang here for its CPU device) interprets each element in "
                    f"Python: {size} elements exceed the adapter's limit of {PYTHON_BACKEND_MAX_ELEMENTS}")
        return restrict(params, shape, second_shape) if restrict else None

    return check


def _classes_last(params: dict, shape: tuple, second_shape: tuple | None = None) -> str | None:
    """sparse_categorical_crossentropy puts the classes on the last axis."""
    axis = params.get("axis", -1)
    if not shape or axis % len(shape) != len(shape) - 1:
        return f"classes must be on the last axis (got axis={axis}, shape={shape})"
    if params.get("ignore_index") == -1:
        return "ignore_index=-1 is sparse_categorical_crossentropy's 'ignore nothing' default"
    return None


def _class_axis_one(params: dict, shape: tuple, second_shape: tuple | None = None) -> str | None:
    """cross_entropy puts the classes on axis 1 (axis 0 for a 1-D input)."""
    want = 1 if len(shape) >= 2 else 0
    axis = params.get("axis", -1)
    if not shape or axis % len(shape) != want:
        return f"classes must be on axis {want} (got axis={axis}, shape={shape})"
    return None


class TinygradAdapter(Adapter):
    """tinygrad: Tensor.sparse_categorical_crossentropy, cross_entropy, binary_crossentropy(_logits),
    softmax, log_softmax, sigmoid."""

    name = "tinygrad"
    module = "tinygrad"

    def load(self) -> None:
        """Pick the backend (CPU when clang is on PATH, else the PYTHON interpreter), then import."""
        os.environ["DEV"] = _backend()
        from tinygrad import Device

        self.device = Device.DEFAULT

    def environment(self) -> dict:
        """tinygrad version and backend."""
        return {**super().environment(), "backend": _backend(),
                "clang_on_path": bool(shutil.which("clang"))}

    # -- conversion -------------------------------------------------------------------------------
    def tensor(self, array: np.ndarray, dtype: str | None) -> Any:
        """A Tensor holding ``array`` exactly (bfloat16 via float32, which is exact)."""
        from tinygrad import Tensor, dtypes

        array = np.asarray(array)
        if dtype is None:
            return Tensor(array.copy())
        exact = array.astype(numpy_dtype(dtype))
        if dtype == "bfloat16":
            return Tensor(exact.astype(np.float32)).cast(dtypes.bfloat16)
        return Tensor(exact.copy())

    def numpy(self, tensor: Any) -> np.ndarray:
        """The tensor as NumPy in its own dtype (bfloat16 as ml_dtypes.bfloat16, exact via float32)."""
        from tinygrad import dtypes

        if tensor.dtype == dtypes.bfloat16:
            return tensor.cast(dtypes.float32).numpy().astype(ml_dtypes.bfloat16)
        return tensor.numpy()

    def value_and_grad(
        self, impl: Impl, first: np.ndarray, second: np.ndarray | None, params: dict, dtype: str
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Value of ``impl.fn`` and d(sum value)/d(first) by ``Tensor.gradient`` with a cotangent of ones."""
        x = self.tensor(first, dtype)
        value = impl.fn(x, self.second_tensor(second, dtype), **self.arguments(impl, params, dtype))
        if not impl.grad:
            return self.numpy(value), None
        (grad,) = value.gradient(x, gradient=value.ones_like())
        return self.numpy(value), self.numpy(grad)

    # -- the table --------------------------------------------------------------------------------
    def implementations(self) -> list[Impl]:
        """tinygrad Tensor methods that implement catalog losses."""

        def sparse_ce(x, y, reduction, label_smoothing=0.0, ignore_index=None, axis=-1):
            return x.sparse_categorical_crossentropy(
                y, ignore_index=-1 if ignore_index is None else int(ignore_index),
                label_smoothing=label_smoothing, reduction=reduction,
            )

        def bce_logits(x, z, reduction, pos_weight=None):
            return x.binary_crossentropy_logits(z, reduction=reduction, pos_weight=pos_weight)

        return [
            Impl(
                "sparse_softmax_cross_entropy", "tinygrad.Tensor.sparse_categorical_crossentropy", sparse_ce,
                name="sparse_categorical_crossentropy", params=("label_smoothing", "ignore_index", "axis"),
                restrict=_fits_backend(_classes_last),
                note="classes last; mean divides by the number of kept targets (" + _SRC + ")",
            ),
            Impl(
                "softmax_cross_entropy", "tinygrad.Tensor.cross_entropy",
                lambda x, t, reduction, label_smoothing=0.0, axis=-1: x.cross_entropy(
                    t, reduction=reduction, label_smoothing=label_smoothing
                ),
                name="cross_entropy[probs]", params=("label_smoothing", "axis"),
                restrict=_fits_backend(_class_axis_one),
                note="probability targets of the logits' shape; classes on axis 1",
            ),
            Impl(
                "sigmoid_cross_entropy", "tinygrad.Tensor.binary_crossentropy_logits", bce_logits,
                name="binary_crossentropy_logits", params=("pos_weight",), restrict=_fits_backend(),
                note="-(pos_weight z logsigmoid(x) + (1 - z) logsigmoid(-x))",
            ),
            Impl(
                "binary_cross_entropy", "tinygrad.Tensor.binary_crossentropy",
                lambda p, z, reduction: p.binary_crossentropy(z, reduction=reduction),
                name="binary_crossentropy", restrict=_fits_backend(), note="-z log p - (1 - z) log(1 - p), no clamp",
            ),
            Impl("softmax", "tinygrad.Tensor.softmax", lambda x, _, reduction, axis=-1: x.softmax(axis),
                 params=("axis",), reductions=NONE, restrict=_fits_backend()),
            Impl("log_softmax", "tinygrad.Tensor.log_softmax", lambda x, _, reduction, axis=-1: x.log_softmax(axis),
                 params=("axis",), reductions=NONE, restrict=_fits_backend()),
            Impl("sigmoid", "tinygrad.Tensor.sigmoid", lambda x, _, reduction: x.sigmoid(), reductions=NONE,
                 restrict=_fits_backend(),
                 note="1 / (1 + exp2(-x / ln 2))"),
        ]
