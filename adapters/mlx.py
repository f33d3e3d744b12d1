"""MLX adapter: ``mlx.nn.losses`` and the ``mlx.core`` / ``mlx.nn`` building blocks, on MLX's CPU device.

Conventions a reader should know before the table:
- the Linux wheel is ``mlx[cpu]`` (``mlx-cpu``); every array lives on ``mx.cpu``, which also runs float64
  (MLX's GPU backends have no float64);
- ``cross_entropy``'s ``weights`` are per *target* (one per sample), not per class: a class weight w
  is passed as ``w[labels]``, and ``reduction="mean"`` then averages over samples (catalog variant
  ``mean_over_count``); with label smoothing the per-sample weight scales the smoothed loss, which is
  not the catalog's class-weighted smoothed target, so that combination is left out;
- ``cross_entropy`` raises for ``label_smoothing >= 1``;
- ``kl_div_loss`` is left out: it takes the *target* as log-probabilities too, while the catalog's target
  is probabilities; converting would add a rounding of log p that is the adapter's, not MLX's;
- ``softmax`` is listed twice: ``precise=False`` (the default: float16/bfloat16 accumulate in their own
  dtype) and ``precise=True`` (float32 accumulation), so the report shows what the flag buys;
- gradients by ``mx.vjp`` with a cotangent of ones (MLX's own autodiff; ``mx.value_and_grad`` is the
  same transform for a scalar loss).
"""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np

from lossconf.adapters.base import Adapter, Impl
from lossconf.reference.dtypes import numpy_dtype

_DOCS = "https://ml-explore.github.io/mlx/build/html/python/nn/_autosummary_functions/"
NONE = ("none",)


def _same_shape(params: dict, shape: tuple, second_shape: tuple | None) -> str | None:
    """mlx.nn.losses raise unless targets have the inputs' shape (no broadcasting)."""
    if second_shape is None or tuple(second_shape) == tuple(shape):
        return None
    return f"mlx.nn.losses require targets of the inputs' shape (got {shape} and {second_shape})"


def _sparse_ce_restrict(params: dict, shape: tuple, second_shape: tuple | None) -> str | None:
    """label_smoothing must be < 1; per-target weights do not give class-weighted smoothed targets."""
    eps = params.get("label_smoothing", 0.0)
    if eps >= 1:
        return "mlx.nn.losses.cross_entropy raises for label_smoothing >= 1"
    if eps > 0 and params.get("weight") is not None:
        return "cross_entropy's per-target weights scale the smoothed loss, not the smoothed targets per class"
    return None


def _smoothing_below_one(params: dict, shape: tuple, second_shape: tuple | None) -> str | None:
    if params.get("label_smoothing", 0.0) >= 1:
        return "mlx.nn.losses.cross_entropy raises for label_smoothing >= 1"
    return _same_shape(params, shape, second_shape)


class MlxAdapter(Adapter):
    """MLX: mlx.nn.losses, mx.softmax, mx.sigmoid and mlx.nn.log_softmax on the CPU device."""

    name = "mlx"
    module = "mlx"
    distributions = ("mlx", "mlx-cpu")

    def load(self) -> None:
        """Import MLX and make its CPU device the default (the only one with float64)."""
        import mlx.core as mx

        mx.set_default_device(mx.cpu)
        self.device = "cpu"

    def environment(self) -> dict:
        """MLX version and its default device."""
        import mlx.core as mx

        return {**super().environment(), "version": mx.__version__, "default_device": str(mx.default_device())}

    # -- conversion -------------------------------------------------------------------------------
    def tensor(self, array: np.ndarray, dtype: str | None) -> Any:
        """An mx.array holding ``array`` exactly (bfloat16 via float32, which is exact)."""
        import mlx.core as mx

        array = np.asarray(array)
        if dtype is None:
            return mx.array(array)
        exact = array.astype(numpy_dtype(dtype))
        if dtype == "bfloat16":
            return mx.array(exact.astype(np.float32)).astype(mx.bfloat16)
        return mx.array(exact, dtype=getattr(mx, dtype))  # mx.array(float64 ndarray) alone gives float32

    def numpy(self, tensor: Any) -> np.ndarray:
        """The array as NumPy in its own dtype (bfloat16 as ml_dtypes.bfloat16, exact via float32)."""
        import mlx.core as mx

        if tensor.dtype == mx.bfloat16:
            return np.array(tensor.astype(mx.float32)).astype(ml_dtypes.bfloat16)
        return np.array(tensor)

    def value_and_grad(
        self, impl: Impl, first: np.ndarray, second: np.ndarray | None, params: dict, dtype: str
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Value of ``impl.fn`` and d(sum value)/d(first) by ``mx.vjp`` with a cotangent of ones."""
        import mlx.core as mx

        x, target = self.tensor(first, dtype), self.second_tensor(second, dtype)
        kwargs = self.arguments(impl, params, dtype)

        def loss(x):
            return impl.fn(x, target, **kwargs)

        if not impl.grad:
            return self.numpy(loss(x)), None
        value = loss(x)
        _, (grad,) = mx.vjp(loss, [x], [mx.ones_like(value)])
        return self.numpy(value), self.numpy(grad)

    # -- the table --------------------------------------------------------------------------------
    def implementations(self) -> list[Impl]:
        """mlx.nn.losses and the softmax/sigmoid building blocks."""
        import mlx.core as mx
        import mlx.nn as nn

        losses = nn.losses

        def cross_entropy(x, y, reduction, label_smoothing=0.0, weight=None, axis=-1):
            per_target = None if weight is None else weight[y]  # class weight -> the weight of each target
            return losses.cross_entropy(
                x, y, weights=per_target, axis=axis, label_smoothing=label_smoothing, reduction=reduction
            )

        # No row is declared isolate, though two crash the worker on known inputs: a forked child of an MLX
        # worker hangs in its first call (tried 2026-11-29), so each crash costs a worker restart instead.
        return [
            Impl(
                "sparse_softmax_cross_entropy", "mlx.nn.losses.cross_entropy", cross_entropy,
                name="cross_entropy", params=("label_smoothing", "weight", "axis"),
                variant="mean_over_count", restrict=_sparse_ce_restrict,
                note="class indices; class weights passed as per-target weights w[y], so mean divides by N "
                "(" + _DOCS + "mlx.nn.losses.cross_entropy.html)",
            ),
            Impl(
                "softmax_cross_entropy", "mlx.nn.losses.cross_entropy",
                lambda x, t, reduction, label_smoothing=0.0, axis=-1: losses.cross_entropy(
                    x, t, axis=axis, label_smoothing=label_smoothing, reduction=reduction
                ),
                name="cross_entropy[probs]", params=("label_smoothing", "axis"), restrict=_smoothing_below_one,
                note="probability targets (same shape as the logits)",
            ),
            Impl(
                "sigmoid_cross_entropy", "mlx.nn.losses.binary_cross_entropy",
                lambda x, z, reduction: losses.binary_cross_entropy(x, z, with_logits=True, reduction=reduction),
                name="binary_cross_entropy[logits]", restrict=_same_shape,
                note="with_logits=True: logaddexp(0, x) - x z",
            ),
            Impl(
                "binary_cross_entropy", "mlx.nn.losses.binary_cross_entropy",
                lambda p, z, reduction: losses.binary_cross_entropy(p, z, with_logits=False, reduction=reduction),
                name="binary_cross_entropy[probs]", variant="log_clamp_-100", restrict=_same_shape,
                note="with_logits=False clips log(p) and log(1 - p) to >= -100 (documented)",
            ),
            Impl(
                "mean_squared_error", "mlx.nn.losses.mse_loss",
                lambda x, y, reduction: losses.mse_loss(x, y, reduction=reduction), restrict=_same_shape,
            ),
            Impl(
                "mean_absolute_error", "mlx.nn.losses.l1_loss",
                lambda x, y, reduction: losses.l1_loss(x, y, reduction=reduction), restrict=_same_shape,
            ),
            Impl("softmax", "mlx.core.softmax", lambda x, _, reduction, axis=-1: mx.softmax(x, axis=axis),
                 params=("axis",), reductions=NONE, note="precise=False (the default)"),
            Impl("softmax", "mlx.core.softmax", lambda x, _, reduction, axis=-1: mx.softmax(x, axis=axis, precise=True),
                 name="softmax[precise]", params=("axis",), reductions=NONE,
                 note="precise=True: float16/bfloat16 inputs accumulate in float32"),
            Impl("log_softmax", "mlx.nn.log_softmax", lambda x, _, reduction, axis=-1: nn.log_softmax(x, axis=axis),
                 params=("axis",), reductions=NONE, note="mlx.core has no log_softmax; mlx.nn's is x - logsumexp(x)"),
            Impl("sigmoid", "mlx.core.sigmoid", lambda x, _, reduction: mx.sigmoid(x), reductions=NONE),
        ]
