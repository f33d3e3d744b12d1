"""JAX adapter: the ``optax.losses`` functions and the ``jax.nn`` building blocks.

- Optax losses have no reduction argument: they return one value per sample (per element for
  ``sigmoid_binary_cross_entropy``, ``squared_error`` and ``l2_loss``), so canonical "none" only.
- float64 is real: ``load`` enables ``jax_enable_x64`` (without it JAX silently computes in float32).
- Modes: ``jit`` (the default) and ``eager`` (the same function un-jitted: every primitive dispatched
  and compiled on its own, so XLA cannot fuse across them or keep excess precision between them).
- Gradients come from ``jax.vjp`` with a cotangent of ones, inside ``jax.jit`` (as users run them):
  measured on CPU, a first call of softmax_cross_entropy on [64, 10] costs ~0.3 s jitted against
  ~1.3 s eager (eager compiles every primitive), repeated calls 0.05 ms against 1.8 ms. XLA may keep
  float16/bfloat16 intermediates in float32 inside a fusion (``xla_allow_excess_precision``).
- ``ignore_index`` maps to the ``where=`` mask of ``softmax_cross_entropy_with_integer_labels``, which
  returns 0 for a sample whose mask is all False.
- XLA compiles once per API, parameters and input shape: compiling is most of a run's time (~0.13 s
  per call). Padding the sample axis to power-of-two buckets was measured and dropped: the runner
  already concatenates every reduction="none" case with the same trailing shape and parameters into
  one call, so the default run's 644 calls have 632 distinct shapes with or without padding, and
  padding changed float32 log_softmax results by 1 ulp (XLA vectorizes 5 and 8 rows differently).
  For repeated runs set JAX's own JAX_COMPILATION_CACHE_DIR (a persistent compilation cache).
- On CPU, XLA marks every compiled function ``denormal-fp-math=preserve-sign`` (flush-to-zero): a
  subnormal float32/float64 result, and so a bfloat16 one (computed in float32), reads 0
  (https://github.com/jax-ml/jax/issues/16200, "working as intended"); ``load`` declares it for those
  dtypes. float16 keeps its subnormals (its arithmetic is rounded from float32).
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np

from lossconf.adapters.base import UNSUPPORTED, Adapter, Impl, Reason
from lossconf.caches import COMPILE_CACHE_BYTES, cache_directory
from lossconf.reference.dtypes import numpy_dtype


class JaxAdapter(Adapter):
    """``optax.losses`` and ``jax.nn``."""

    name = "jax"
    modes = ("jit", "eager")
    # op by op, every primitive is compiled for every new shape: summed call time of the default run's
    # cases was ~1070 s against ~110 s jitted, so the runner bounds eager's shapes (--compile-shapes)
    bounded_modes = ("eager",)
    workers = 2  # XLA compiles each new shape on one core: a second process uses the idle one
    module = "jax"

    # -- loading ---------------------------------------------------------------------------------
    def load(self) -> None:
        """Import JAX with x64 enabled, pick the device, declare CPU flush-to-zero (jax#16200)."""
        import jax

        jax.config.update("jax_enable_x64", True)
        # XLA compiles every new shape (~0.1 s each on CPU, most of this adapter's time); a persistent
        # cache makes every run after the first one fast. The cache never changes the compiled code.
        if not jax.config.jax_compilation_cache_dir:
            cache = cache_directory("jax")
            jax.config.update("jax_compilation_cache_dir", str(cache))
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
            jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
            jax.config.update("jax_compilation_cache_max_size", COMPILE_CACHE_BYTES)  # JAX evicts the least recent
        self._device = _pick_device(jax)
        self.device = f"{self._device.platform}:{self._device.id}"
        if self._device.platform == "cpu":
            self.flushes_subnormals = ("bfloat16", "float32", "float64")

    def environment(self) -> dict:
        """JAX, jaxlib and Optax versions, the device and the flags that change numerics."""
        import jax
        import jaxlib
        import optax

        return {
            **super().environment(),
            "jaxlib": jaxlib.__version__,
            "optax": optax.__version__,
            "backend": jax.default_backend(),
            "jax_enable_x64": bool(jax.config.jax_enable_x64),
            "jax_default_matmul_precision": str(jax.config.jax_default_matmul_precision),
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "jax_softmax_custom_jvp": bool(jax.config.jax_softmax_custom_jvp),
            "jax_compilation_cache_dir": str(jax.config.jax_compilation_cache_dir or ""),
        }

    # -- conversion and autodiff -----------------------------------------------------------------
    def tensor(self, array: np.ndarray, dtype: str | None) -> Any:
        """A jax.Array on the adapter's device; floats rounded in NumPy, then moved exactly."""
        import jax

        if dtype is None:
            return jax.device_put(np.asarray(array), self._device)
        exact = np.asarray(array).astype(numpy_dtype(dtype))
        # via float32/float64: every value of the target dtype is representable there
        wide = exact.astype(np.float64 if dtype == "float64" else np.float32)
        return jax.device_put(wide, self._device).astype(dtype)

    def numpy(self, tensor: Any) -> np.ndarray:
        """The array's values in its own dtype (JAX's bfloat16 is ml_dtypes.bfloat16)."""
        return np.asarray(tensor)

    def value_and_grad(
        self, impl: Impl, first: np.ndarray, second: np.ndarray | None, params: dict, dtype: str,
        mode: str = "jit",
    ) -> tuple[np.ndarray, np.ndarray | tuple | None]:
        """Value of ``impl.fn`` and d(sum value)/d(first) through ``jax.vjp``, jitted or op by op."""
        # Python scalar parameters are part of the compiled function's key; arrays (linear_weight) are arguments
        api = _api_params(impl, params)
        arrays = {k: self.tensor(v, dtype) for k, v in api.items() if isinstance(v, np.ndarray)}
        static = tuple(sorted((k, v) for k, v in api.items() if k not in arrays))
        jit = self.mode_of(mode) == "jit"
        value, grads = _compiled(impl.fn, impl.grad, static, jit, self.grad_params(impl))(
            self.tensor(first, dtype), self.second_tensor(second, dtype), arrays
        )
        return self.numpy(value), None if grads is None else self.pack_grads([self.numpy(g) for g in grads])

    # -- the table -------------------------------------------------------------------------------
    def implementations(self) -> list[Impl]:
        """optax.losses and jax.nn APIs that implement catalog losses."""
        import jax
        import jax.numpy as jnp
        import optax

        ol = optax.losses

        def ctc(x, labels, reduction, blank=0, input_lengths=None, target_lengths=None):
            (n, t), s = x.shape[:2], labels.shape[1]

            def paddings(size, lengths):  # 1.0 marks padding, as optax takes it
                if lengths is None:
                    return jnp.zeros((n, size), x.dtype)
                return (jnp.arange(size)[None, :] >= jnp.asarray(lengths)[:, None]).astype(x.dtype)

            return ol.ctc_loss(x, paddings(t, input_lengths), labels, paddings(s, target_lengths), blank_id=blank)

        def integer_labels_ce(x, labels, reduction, ignore_index=None, axis=-1):
            where = None if ignore_index is None else labels != ignore_index
            return ol.softmax_cross_entropy_with_integer_labels(x, labels, axis=axis, where=where)

        def linear_then_ce(h, labels, reduction, linear_weight, linear_bias=None, ignore_index=None):
            logits = h @ linear_weight.T + (0 if linear_bias is None else linear_bias)
            loss = integer_labels_ce(logits, labels, "none", ignore_index)
            if reduction == "none":
                return loss
            kept = loss.size if ignore_index is None else jax.numpy.sum(labels != ignore_index)
            return jax.numpy.sum(loss) / (1 if reduction == "sum" else kept)

        return [
            Impl(
                "linear_cross_entropy", "optax.losses.softmax_cross_entropy_with_integer_labels", linear_then_ce,
                name="softmax_cross_entropy_with_integer_labels(h @ W.T)", composed=True,
                params=("ignore_index", "linear_weight", "linear_bias"),
                note="no fused API in JAX/Optax: logits h @ W.T + b materialised; mean = sum / kept samples",
            ),
            # -- optax.losses --------------------------------------------------------------------
            Impl(
                "softmax_cross_entropy", "optax.losses.softmax_cross_entropy",
                lambda x, t, reduction, axis=-1: ol.softmax_cross_entropy(x, t, axis=axis),
                params=("axis",), reductions=("none",),
                note="computes labels * log_softmax: a -inf logit with label 0 gives NaN "
                "(documented; safe_softmax_cross_entropy handles it)",
            ),
            Impl(
                "softmax_cross_entropy", "optax.losses.safe_softmax_cross_entropy",
                lambda x, t, reduction: ol.safe_softmax_cross_entropy(x, t),
                reductions=("none",), note="0 log 0 = 0 for -inf logits; class axis last only",
            ),
            Impl(
                "sparse_softmax_cross_entropy", "optax.losses.softmax_cross_entropy_with_integer_labels",
                integer_labels_ce, params=("ignore_index", "axis"), reductions=("none",),
                note="ignore_index through where=(labels != ignore_index); a sample masked out "
                "entirely returns 0",
            ),
            Impl(
                "sigmoid_cross_entropy", "optax.losses.sigmoid_binary_cross_entropy",
                lambda x, t, reduction: ol.sigmoid_binary_cross_entropy(x, t), reductions=("none",),
            ),
            Impl(
                "smooth_labels", "optax.losses.smooth_labels",
                lambda y, _, reduction, label_smoothing=0.0: ol.smooth_labels(y, label_smoothing),
                params=("label_smoothing",), reductions=("none",),
            ),
            Impl(
                "mean_squared_error", "optax.losses.squared_error",
                lambda x, t, reduction: ol.squared_error(x, t), reductions=("none",),
                restrict=_equal_shapes,
            ),
            Impl(
                "mean_squared_error", "optax.losses.l2_loss",
                lambda x, t, reduction: ol.l2_loss(x, t), reductions=("none",),
                variant="half_squared_error", restrict=_equal_shapes,
            ),
            Impl(
                "kl_divergence", "optax.losses.kl_divergence",
                lambda x, t, reduction, axis=-1: ol.kl_divergence(x, t, axis=axis),
                params=("axis",), reductions=("none",),
                note="first input is log q (log_input=True only)",
            ),
            Impl(
                "sigmoid_focal_loss", "optax.losses.sigmoid_focal_loss",
                lambda x, t, reduction, alpha=None, gamma=2.0: ol.sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma),
                params=("alpha", "gamma"), reductions=("none",),
            ),
            Impl(
                "ctc", "optax.losses.ctc_loss", ctc,
                params=("blank", "input_lengths", "target_lengths"), reductions=("none",),
                note="logits [B, T, K] with logit_paddings and label_paddings (1 = padding) built from the lengths; "
                "log_epsilon=-1e5 (the default) stands for log 0",
            ),
            Impl(
                "cosine_similarity", "optax.losses.cosine_similarity",
                lambda x, t, reduction, axis=-1: ol.cosine_similarity(x, t, axis=axis),
                params=("axis",), reductions=("none",), note="epsilon=0 (the default): a zero vector gives NaN",
            ),
            Impl(
                "cosine_similarity", "optax.losses.cosine_distance",
                lambda x, t, reduction, axis=-1: ol.cosine_distance(x, t, axis=axis),
                params=("axis",), reductions=("none",), variant="cosine_distance",
            ),
            Impl(
                "huber", "optax.losses.huber_loss",
                lambda x, t, reduction, delta=1.0: ol.huber_loss(x, t, delta=delta),
                params=("delta",), reductions=("none",),
            ),
            Impl(
                "log_cosh", "optax.losses.log_cosh", lambda x, t, reduction: ol.log_cosh(x, t),
                reductions=("none",),
            ),
            Impl(
                "hinge", "optax.losses.hinge_loss", lambda x, t, reduction: ol.hinge_loss(x, t),
                reductions=("none",), variant="kink_gradient_half",
                note="jnp.maximum(0, 1 - x t): JAX splits max's gradient evenly at the margin",
            ),
            # -- jax.nn --------------------------------------------------------------------------
            Impl(
                "softmax", "jax.nn.softmax",
                lambda x, _, reduction, axis=-1: jax.nn.softmax(x, axis=axis),
                params=("axis",), reductions=("none",),
            ),
            Impl(
                "log_softmax", "jax.nn.log_softmax",
                lambda x, _, reduction, axis=-1: jax.nn.log_softmax(x, axis=axis),
                params=("axis",), reductions=("none",),
            ),
            Impl("sigmoid", "jax.nn.sigmoid", lambda x, _, reduction: jax.nn.sigmoid(x), reductions=("none",)),
        ]


@functools.cache
def _compiled(fn: Any, grad: bool, static: tuple, jit: bool = True, wrt: tuple[str, ...] = ()) -> Any:
    """(value, (d(sum value)/d(first), d/d(each array param in ``wrt``))) for one API and one set of
    scalar parameters, under ``jax.jit`` or (``jit=False``) run op by op."""
    import jax
    import jax.numpy as jnp

    kwargs = dict(static)

    def run(x, target, arrays):
        const = {k: v for k, v in arrays.items() if k not in wrt}

        def loss(x, diff):
            return fn(x, target, **kwargs, **const, **diff)

        diff = {k: arrays[k] for k in wrt}
        if not grad:
            return loss(x, diff), None
        value, pullback = jax.vjp(loss, x, diff)
        gx, gdiff = pullback(jnp.ones_like(value))
        return value, (gx, *(gdiff[k] for k in wrt))

    return jax.jit(run) if jit else run


def _equal_shapes(params: dict, shape: tuple, second_shape: tuple | None) -> Reason | None:
    """optax's squared_error raises unless targets have the predictions' shape."""
    if second_shape is None or tuple(second_shape) == tuple(shape):
        return None
    return Reason(  # documented as broadcastable, so a shortfall, not an API limit
        "optax.losses.squared_error requires targets of the predictions' shape (utils.check_shapes_equal; "
        "its docstring says broadcastable): https://github.com/google-deepmind/optax/blob/"
        "2edbcbe2390da13983b92cbef94ac0460ecde1c5/optax/losses/_regression.py#L48", UNSUPPORTED,
    )


def _api_params(impl: Impl, params: dict) -> dict:
    """``reduction`` and the parameters ``impl`` declares (others only reach it at their defaults)."""
    # integer arrays (CTC's lengths) as tuples: static arguments of the compiled function must hash;
    # float arrays (linear_weight) stay arrays, passed as arguments
    return {k: tuple(v.tolist()) if isinstance(v, np.ndarray) and v.dtype.kind in "iu" else v
            for k, v in params.items() if k == "reduction" or k in impl.params}


def _pick_device(jax: Any) -> Any:
    """LOSSCONF_DEVICE (cpu, gpu, cuda, gpu:1, ...) when set, else the first GPU, else the CPU."""
    requested = os.environ.get("LOSSCONF_DEVICE", "").strip().lower()
    if not requested:
        try:
            return jax.devices("gpu")[0]
        except RuntimeError:  # no GPU backend in this jaxlib
            return jax.devices("cpu")[0]
    kind, _, index = requested.partition(":")
    kind = {"cuda": "gpu", "gpu": "gpu", "cpu": "cpu"}.get(kind)
    if kind is None:
        raise ValueError(f"LOSSCONF_DEVICE: {requested!r}; expected cpu, gpu or cuda, optionally ':N'")
    return jax.devices(kind)[int(index or 0)]
