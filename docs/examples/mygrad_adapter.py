"""A lossconf adapter for MyGrad (pure-NumPy autodiff, https://mygrad.readthedocs.io): the worked
example of docs/writing-an-adapter.md, grown from docs/adapter_template.py.

    pip install mygrad
    lossconf check-adapter docs/examples/mygrad_adapter.py:MyGradAdapter --budget 8
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lossconf.adapters.base import Adapter, Impl
from lossconf.reference.dtypes import numpy_dtype

# MyGrad computes with NumPy, which has no bfloat16 arithmetic: mygrad.tensor rejects it (TypeError).
DTYPES = ("float16", "float32", "float64")
DOCS = "https://mygrad.readthedocs.io/en/latest/"


def only_mean(reduction: str) -> None:
    """MyGrad's losses always return the mean: refuse any other reduction instead of ignoring it."""
    if reduction != "mean":
        raise ValueError(f"mygrad losses return the mean only, not reduction={reduction!r}")


def rows_classes_last(params: dict, shape: tuple, second_shape: tuple | None = None) -> str | None:
    """MyGrad's losses take x of shape (N, C): two dimensions, classes last."""
    if len(shape) != 2 or params.get("axis", -1) % 2 != 1:
        return f"mygrad losses take x of shape (N, C) with classes last (got shape={shape})"
    return None


class MyGradAdapter(Adapter):
    """MyGrad: mygrad.nnet.losses and mygrad.nnet.activations."""

    name = "mygrad"
    module = "mygrad"
    known_deviations = "known/mygrad.toml"

    def load(self) -> None:
        """Import mygrad (runs once, in the worker process)."""
        import mygrad  # noqa: F401

    # -- conversion ---------------------------------------------------------------------------
    def tensor(self, array: np.ndarray, dtype: str | None) -> Any:
        """A mygrad.Tensor in ``dtype``; integer labels stay a plain NumPy array."""
        import mygrad as mg

        if dtype is None:
            return np.asarray(array)
        return mg.tensor(np.asarray(array).astype(numpy_dtype(dtype)))

    def numpy(self, tensor: Any) -> np.ndarray:
        """The tensor's data (a NumPy array already, in its own dtype)."""
        return np.asarray(getattr(tensor, "data", tensor))

    def value_and_grad(self, impl: Impl, first: np.ndarray, second: np.ndarray | None, params: dict,
                       dtype: str) -> tuple[np.ndarray, np.ndarray | None]:
        """The value of ``impl.fn`` and d(sum of the value)/d(first) by mygrad's backward()."""
        import mygrad as mg

        x = self.tensor(first, dtype)
        kwargs = {k: v for k, v in self.convert_params(params, dtype).items() if k == "reduction" or k in impl.params}
        value = impl.fn(x, self.second_tensor(second, dtype), **kwargs)
        if not impl.grad:
            return self.numpy(value), None
        mg.sum(value).backward()
        grad = x.grad if x.grad is not None else np.zeros_like(x.data)
        return self.numpy(value), np.asarray(grad)

    # -- the table ----------------------------------------------------------------------------
    def implementations(self) -> list[Impl]:
        """MyGrad's public losses and activations that implement catalog losses."""
        from mygrad.nnet.activations import logsoftmax, sigmoid, softmax
        from mygrad.nnet.losses import negative_log_likelihood, softmax_crossentropy

        def crossentropy(x, y, reduction):
            only_mean(reduction)
            return softmax_crossentropy(x, y)

        def nll_of_logsoftmax(x, y, reduction, weight=None):
            only_mean(reduction)
            return negative_log_likelihood(logsoftmax(x), y, weights=weight)

        return [
            Impl("sparse_softmax_cross_entropy", "mygrad.nnet.losses.softmax_crossentropy",
                 crossentropy, name="softmax_crossentropy", dtypes=DTYPES, reductions=("mean",),
                 restrict=rows_classes_last,
                 note="returns the mean over the N samples only (no reduction argument)"),
            Impl("sparse_softmax_cross_entropy", "mygrad.nnet.losses.negative_log_likelihood", nll_of_logsoftmax,
                 name="negative_log_likelihood(logsoftmax)", composed=True, dtypes=("float64",), params=("weight",),
                 reductions=("mean",), restrict=rows_classes_last, variant="mean_over_count",
                 note="weighted mean divides by N, not by the summed weights "
                 f"({DOCS}generated/mygrad.nnet.losses.negative_log_likelihood.html); float16 and float32 "
                 "inputs give a float64 loss (mygrad 2.5), so only float64 is declared"),
            Impl("log_softmax", "mygrad.nnet.activations.logsoftmax",
                 lambda x, _, reduction, axis=-1: logsoftmax(x, axis=axis),
                 dtypes=DTYPES, params=("axis",), reductions=("none",)),
            Impl("softmax", "mygrad.nnet.activations.softmax",
                 lambda x, _, reduction, axis=-1: softmax(x, axis=axis),
                 dtypes=DTYPES, params=("axis",), reductions=("none",)),
            Impl("sigmoid", "mygrad.nnet.activations.sigmoid", lambda x, _, reduction: sigmoid(x),
                 dtypes=DTYPES, reductions=("none",)),
        ]
