"""Keras 3: the ``keras.losses`` table, written once and run on every backend.

Keras 3 is one API on three backends. The table below is shared by the TensorFlow adapter (its Keras
rows, check ids ``tensorflow:<Loss>(...)``, unchanged) and by the adapters ``keras_jax`` and
``keras_torch``, which set ``KERAS_BACKEND`` in their own worker before Keras is imported and take
conversion, autodiff and execution modes from the JAX and torch adapters (``jax.vjp`` under ``jit`` or
op by op; torch autograd, eager or ``torch.compile``).

- Loss classes are built with ``dtype=`` the dtype under test. Keras's default (``dtype=None``)
  computes in ``keras.config.floatx()`` (float32) whatever the inputs are, so float64 inputs would be
  rounded to float32 and float16 results come back as float32.
- Reductions: ``None`` -> "none", ``"sum_over_batch_size"`` -> "mean" (sum / number of per-sample
  values), ``"sum"`` -> "sum". Keras's elementwise losses (MSE, MAE, BinaryCrossentropy) average over
  the last axis before reducing; for "none" and "sum" the table appends a size-1 trailing axis so
  that this average is over one element (exact) and the values stay elementwise. A target of lower
  rank (broadcast over first) is broadcast to first's shape first: Keras matches ranks by squeezing
  or expanding the last axis (``squeeze_or_expand_to_same_rank``), which breaks that trailing axis.
- The ``keras.losses.categorical_crossentropy`` family of functions is what the classes call; they
  are not separate rows.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from lossconf.adapters.base import Impl
from lossconf.adapters.jax import JaxAdapter
from lossconf.adapters.torch import TorchAdapter

_KERAS_DOCS = "https://keras.io/api/losses/probabilistic_losses/"
_KERAS_REDUCTION = {"none": None, "mean": "sum_over_batch_size", "sum": "sum"}


def import_keras(backend: str) -> Any:
    """Keras with ``backend``, which must be set before the first import (RuntimeError otherwise)."""
    os.environ["KERAS_BACKEND"] = backend
    import keras

    if keras.config.backend() != backend:
        raise RuntimeError(f"Keras was already imported with backend {keras.config.backend()!r}, not {backend!r}")
    return keras


def keras_environment() -> dict:
    """Keras's own conventions on the current backend: version, dtype policy, epsilon, float64 promotion."""
    import keras

    return {
        "keras": keras.__version__,
        "keras_backend": keras.config.backend(),
        "keras_floatx": keras.config.floatx(),
        "keras_dtype_policy": keras.config.dtype_policy().name,
        "keras_epsilon": keras.config.epsilon(),
        # off TensorFlow Keras promotes float64 to float32 (ops such as mean compute in float32)
        "keras_result_type_float64_float32": keras.backend.result_type("float64", "float32"),
        "keras_loss_dtype": "dtype= the dtype under test (Keras's default computes in floatx)",
        "keras_reductions": ", ".join(f"{k}={v}" for k, v in _KERAS_REDUCTION.items()),
    }


def keras_implementations() -> list[Impl]:
    """The keras.losses classes that implement catalog losses, on whichever backend Keras runs."""
    import keras

    losses, ops = keras.losses, keras.ops
    # the gradient of ops.maximum at a tie is the backend's own: tf's _MaximumGrad gives it to the first
    # argument, jax's max_p JVP (_balanced_eq) and torch's maximum backward give each half
    kink = "kink_gradient_full" if keras.config.backend() == "tensorflow" else "kink_gradient_half"

    def keras_loss(cls, x, target, reduction, elementwise=False, **kwargs):
        # elementwise Keras losses average over the last axis: give them a size-1 one
        if elementwise and reduction != "mean":
            target = ops.broadcast_to(target, ops.shape(x))  # a [C] target over [N, C]
            x, target = x[..., None], target[..., None]
        loss = cls(reduction=_KERAS_REDUCTION[reduction], dtype=keras.backend.standardize_dtype(x.dtype), **kwargs)
        return loss(target, x)

    def linear_then_keras_ce(h, y, reduction, linear_weight, linear_bias=None, ignore_index=None):
        logits = ops.matmul(h, ops.transpose(linear_weight))
        logits = logits if linear_bias is None else logits + linear_bias
        return keras_loss(losses.SparseCategoricalCrossentropy, logits, y, reduction, from_logits=True,
                          ignore_class=ignore_index)

    return [
        Impl(
            "linear_cross_entropy", "keras.losses.SparseCategoricalCrossentropy", linear_then_keras_ce,
            name="SparseCategoricalCrossentropy(matmul)", composed=True, variant="all_ignored_zero",
            params=("ignore_index", "linear_weight", "linear_bias"),
            note="no fused API in Keras: keras.ops.matmul(h, W^T) + b, then from_logits=True (ignore_class "
            "masks samples; mean over the kept ones)",
        ),
        Impl(
            "softmax_cross_entropy", "keras.losses.CategoricalCrossentropy",
            lambda x, t, reduction, label_smoothing=0.0, axis=-1: keras_loss(
                losses.CategoricalCrossentropy, x, t, reduction,
                from_logits=True, label_smoothing=label_smoothing, axis=axis),
            name="CategoricalCrossentropy(from_logits)",
            params=("label_smoothing", "axis"),
            note="from_logits=True; on TensorFlow calls tf.nn.softmax_cross_entropy_with_logits",
        ),
        Impl(
            "categorical_cross_entropy", "keras.losses.CategoricalCrossentropy",
            lambda x, t, reduction, axis=-1: keras_loss(
                losses.CategoricalCrossentropy, x, t, reduction, axis=axis),
            name="CategoricalCrossentropy(probs)",
            params=("axis",), variant="normalize_then_clip_1e-7",
            note="from_logits=False: divides by the sum over the class axis, then clips",
        ),
        Impl(
            "sparse_softmax_cross_entropy", "keras.losses.SparseCategoricalCrossentropy",
            lambda x, t, reduction, ignore_index=None, axis=-1: keras_loss(
                losses.SparseCategoricalCrossentropy, x, t, reduction,
                from_logits=True, ignore_class=ignore_index, axis=axis),
            name="SparseCategoricalCrossentropy(from_logits)",
            params=("ignore_index", "axis"), variant="all_ignored_zero", restrict=classes_last,
            note="from_logits=True; ignore_class masks samples, 'sum_over_batch_size' divides "
            "by the number of kept samples (0 when none is kept). from_logits=False has no "
            "catalog loss: it computes -log(clip(p_y) / sum_c clip(p_c))",
        ),
        Impl(
            "sigmoid_cross_entropy", "keras.losses.BinaryCrossentropy",
            lambda x, t, reduction, label_smoothing=0.0: keras_loss(
                losses.BinaryCrossentropy, x, t, reduction, elementwise=True,
                from_logits=True, label_smoothing=label_smoothing),
            name="BinaryCrossentropy(from_logits)", params=("label_smoothing",),
            note="from_logits=True; smoothing z (1 - eps) + eps/2",
        ),
        Impl(
            "binary_cross_entropy", "keras.losses.BinaryCrossentropy",
            lambda x, t, reduction: keras_loss(
                losses.BinaryCrossentropy, x, t, reduction, elementwise=True),
            name="BinaryCrossentropy(probs)", variant="clip_probabilities_1e-7",
        ),
        Impl(
            "mean_squared_error", "keras.losses.MeanSquaredError",
            lambda x, t, reduction: keras_loss(
                losses.MeanSquaredError, x, t, reduction, elementwise=True),
        ),
        Impl(
            "mean_absolute_error", "keras.losses.MeanAbsoluteError",
            lambda x, t, reduction: keras_loss(
                losses.MeanAbsoluteError, x, t, reduction, elementwise=True),
        ),
        Impl(
            "sigmoid_focal_loss", "keras.losses.BinaryFocalCrossentropy",
            lambda x, t, reduction, alpha=None, gamma=2.0: keras_loss(
                losses.BinaryFocalCrossentropy, x, t, reduction, elementwise=True, from_logits=True,
                apply_class_balancing=alpha is not None, alpha=0.25 if alpha is None else alpha, gamma=gamma),
            name="BinaryFocalCrossentropy(from_logits)", params=("alpha", "gamma"),
            note="from_logits=True: sigmoid, then binary_crossentropy, which recovers the logits from the "
            "sigmoid op (_keras_logits) instead of clipping; alpha through apply_class_balancing",
        ),
        Impl(
            "cosine_similarity", "keras.losses.CosineSimilarity",
            lambda x, t, reduction, axis=-1: keras_loss(losses.CosineSimilarity, x, t, reduction, axis=axis),
            params=("axis",), variant="negated_cosine_norm_floor_1e-7", restrict=classes_last,
        ),
        Impl(
            "ctc", "keras.losses.CTC",
            lambda x, y, reduction, target_lengths=None: keras_loss(
                losses.CTC, x, _zero_padded(ops, y, target_lengths), reduction),
            params=("target_lengths",),
            note="blank (mask_index) 0 and every frame used, as keras.losses.ctc fixes them; the label length is the "
            "count of nonzero labels, so labels past target_lengths are set to 0 (" + _KERAS_DOCS + "#ctc-class)",
        ),
        Impl(
            "huber", "keras.losses.Huber",
            lambda x, t, reduction, delta=1.0: keras_loss(
                losses.Huber, x, t, reduction, elementwise=True, delta=delta),
            params=("delta",),
        ),
        Impl(
            "log_cosh", "keras.losses.LogCosh",
            lambda x, t, reduction: keras_loss(losses.LogCosh, x, t, reduction, elementwise=True),
        ),
        Impl(
            "hinge", "keras.losses.Hinge",
            lambda x, t, reduction: keras_loss(losses.Hinge, x, t, reduction, elementwise=True),
            variant=kink,
            note="targets -1/1 (0/1 targets are converted); at the margin ops.maximum(1 - y x, 0) gives the "
            "active side the whole gradient on TensorFlow, half on JAX and torch (their maximum splits ties)",
        ),
        Impl(
            "squared_hinge", "keras.losses.SquaredHinge",
            lambda x, t, reduction: keras_loss(losses.SquaredHinge, x, t, reduction, elementwise=True),
        ),
        Impl(
            "poisson_nll", "keras.losses.Poisson",
            lambda x, t, reduction, log_input=False: keras_loss(
                losses.Poisson, x, t, reduction, elementwise=True),
            params=("log_input",), variant="poisson_log_offset_1e-7", restrict=_rates_only,
            note="rates (log_input=False): y_pred - y_true log(y_pred + epsilon)",
        ),
        Impl(
            "kl_divergence", "keras.losses.KLDivergence",
            lambda x, t, reduction, log_input=False, axis=-1: keras_loss(
                losses.KLDivergence, x, t, reduction),
            params=("log_input", "axis"), variant="clip_probabilities_1e-7",
            restrict=_keras_kl_restrict,
            note="probabilities (log_input=False); clips both y_true and y_pred to [1e-7, 1]",
        ),
    ]


def _zero_padded(ops: Any, labels: Any, target_lengths: Any) -> Any:
    """Labels with every entry past its target length set to 0: Keras's CTC counts the nonzero labels."""
    if target_lengths is None:
        return labels
    kept = ops.arange(ops.shape(labels)[1])[None, :] < ops.cast(target_lengths, "int32")[:, None]
    return ops.where(kept, labels, ops.zeros_like(labels))


def classes_last(params: dict, shape: tuple, second_shape: tuple | None = None) -> str | None:
    """These APIs take the class axis last only."""
    axis = params.get("axis", -1)
    if axis in (-1, len(shape) - 1):
        return None
    return f"classes on the last axis only (axis={axis} requested)"


def _rates_only(params: dict, shape: tuple, second_shape: tuple | None = None) -> str | None:
    """keras.losses.Poisson takes rates."""
    return "Poisson takes rates (log_input=False), not log-rates" if params.get("log_input", True) else None


def _keras_kl_restrict(params: dict, shape: tuple, second_shape: tuple | None = None) -> str | None:
    """KLDivergence takes probabilities and sums over the last axis."""
    if params.get("log_input", True):
        return "KLDivergence takes probabilities (log_input=False), not log-probabilities"
    return classes_last(params, shape)


class _KerasOn:
    """Mixin: the Keras table on the backend of the framework adapter it is mixed into."""

    name: str
    module = "keras"
    backend = ""

    def available(self) -> str | None:
        """Keras and the backend framework must both be installed."""
        for module in ("keras", self.backend):
            if importlib.util.find_spec(module) is None:
                return f"{module} is not installed (pip install 'lossconf[{self.backend}]' keras)"
        return None

    def load(self) -> None:
        """Keras with ``KERAS_BACKEND`` set first, then the backend adapter's own set-up."""
        import_keras(self.backend)
        super().load()  # type: ignore[misc]

    def version(self) -> str:
        """Keras's version (the backend's is in the environment)."""
        from importlib.metadata import version

        return version("keras")

    def environment(self) -> dict:
        """The backend adapter's environment with its version kept as ``<backend>`` and Keras's conventions."""
        from importlib.metadata import version

        env = super().environment()  # type: ignore[misc]
        return {**env, self.backend: version(self.backend), "version": self.version(), **keras_environment()}

    def implementations(self) -> list[Impl]:
        """The shared keras.losses table."""
        return keras_implementations()


class KerasJaxAdapter(_KerasOn, JaxAdapter):
    """``keras.losses`` on the JAX backend (x64 enabled, so float64 is real; modes jit and eager)."""

    name = "keras_jax"
    backend = "jax"


class KerasTorchAdapter(_KerasOn, TorchAdapter):
    """``keras.losses`` on the torch backend (modes eager and compile)."""

    name = "keras_torch"
    backend = "torch"
