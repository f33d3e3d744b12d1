"""TensorFlow adapter: the ``tf.nn`` losses and the Keras 3 losses on the TensorFlow backend.

- ``tf.nn`` functions return one value per sample (or per element): canonical reduction "none" only.
- The Keras rows come from the table shared by every Keras backend (``lossconf.adapters.keras``): its
  conventions (dtype=, reductions, elementwise losses) are described there.
- On the CPU TensorFlow runs every kernel with flush-to-zero/denormals-are-zero set
  (``port::ScopedFlushDenormal`` in the eager executor and in the Eigen thread pools); TensorFlow's
  own test ``kernel_tests/array_ops/denormal_test.py`` asserts it for float32 and float64. The
  adapter therefore declares ``flushes_subnormals`` there (catalog variant ``flush_subnormals``).
- Modes: ``eager`` (the default), ``function`` (``tf.function``: a traced graph run by the TF
  executor, with grappler's graph rewrites) and ``xla`` (``tf.function(jit_compile=True)``: compiled
  by XLA, which fuses and may keep float16/bfloat16 intermediates in float32). The value and the
  gradient (``tf.GradientTape`` inside the function) are traced together, one trace per input
  signature and scalar parameters.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from lossconf.adapters.base import Adapter, Impl
from lossconf.adapters.keras import classes_last, import_keras, keras_environment, keras_implementations
from lossconf.caches import COMPILE_CACHE_BYTES, cache_directory, trim_directory
from lossconf.reference.dtypes import numpy_dtype


class TensorFlowAdapter(Adapter):
    """``tf.nn`` and ``keras.losses`` (Keras 3, TensorFlow backend)."""

    name = "tensorflow"
    module = "tensorflow"
    distributions = ("tensorflow", "tensorflow-cpu")  # the wheels are named differently from the module
    modes = ("eager", "function", "xla")
    bounded_modes = ("xla",)  # XLA compiles each shape: ~450 s summed call time for the default cases

    # -- loading ---------------------------------------------------------------------------------
    def load(self) -> None:
        """Import TensorFlow and Keras (backend forced to TensorFlow) and pick the device."""
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # XLA compiles every new shape (most of the xla mode's time); its persistent cache, keyed by the
        # function and its HLO and checked against the serialized HLO when loaded, makes later runs fast
        # (the key holds the function's process-wide trace number, so a run planned otherwise misses)
        flags = os.environ.get("TF_XLA_FLAGS", "")
        if "--tf_xla_persistent_cache_directory" not in flags:
            cache = cache_directory("tensorflow-xla")
            os.environ["TF_XLA_FLAGS"] = f"{flags} --tf_xla_persistent_cache_directory={cache}".strip()
            trim_directory(cache, COMPILE_CACHE_BYTES)  # TensorFlow never evicts
        import_keras("tensorflow")
        import tensorflow as tf

        self.device = _pick_device(tf)
        # FTZ/DAZ on CPU: https://github.com/tensorflow/tensorflow/blob/master/tensorflow/python/
        # kernel_tests/array_ops/denormal_test.py ("On CPUs, the processor flags flush for both
        # single and double precision"); float16 arithmetic runs in float32, so its subnormals survive
        # float16 is not flushed (2^-10 * 2^-10 gives 2^-20); bfloat16 is computed through flushed float32
        self.flushes_subnormals = ("bfloat16", "float32", "float64") if self.device.startswith("/CPU") else False
        self._functions: dict[tuple[str, str], Any] = {}
        tf.get_logger().setLevel("ERROR")  # retracing per input shape is the point here, not a mistake

    def environment(self) -> dict:
        """TensorFlow and Keras versions, device and the flags that change numerics."""
        import tensorflow as tf

        return {
            **super().environment(),
            **keras_environment(),
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on for x86 CPUs)"),
            "tf32": tf.config.experimental.tensor_float_32_execution_enabled(),
            "deterministic_ops": os.environ.get("TF_DETERMINISTIC_OPS", "unset"),
            "xla_flags": os.environ.get("TF_XLA_FLAGS", ""),
        }

    # -- conversion and autodiff -----------------------------------------------------------------
    def tensor(self, array: np.ndarray, dtype: str | None) -> Any:
        """A tf.Tensor on the adapter's device; floats rounded in NumPy, then moved exactly."""
        import tensorflow as tf

        with tf.device(self.device):
            if dtype is None:
                return tf.constant(array)
            exact = np.asarray(array).astype(numpy_dtype(dtype))
            # via float32/float64: every value of the target dtype is representable there
            wide = exact.astype(np.float64 if dtype == "float64" else np.float32)
            return tf.cast(tf.constant(wide), dtype)

    def numpy(self, tensor: Any) -> np.ndarray:
        """The tensor's values in its own dtype (TensorFlow's bfloat16 is ml_dtypes.bfloat16)."""
        return np.asarray(tensor.numpy())

    def value_and_grad(
        self, impl: Impl, first: np.ndarray, second: np.ndarray | None, params: dict, dtype: str,
        mode: str = "eager",
    ) -> tuple[np.ndarray, np.ndarray | tuple | None]:
        """Value of ``impl.fn`` and d(sum value)/d(first) through ``tf.GradientTape``, eagerly or
        inside ``tf.function`` (mode "function") or ``tf.function(jit_compile=True)`` (mode "xla")."""
        import tensorflow as tf

        mode = self.mode_of(mode)
        kwargs = self.convert_params(_api_params(impl, params), dtype)
        run = _tape(impl)
        if mode != "eager":
            key = (impl.name, mode)
            if key not in self._functions:
                self._functions[key] = tf.function(run, jit_compile=mode == "xla", reduce_retracing=False)
            run = self._functions[key]
        with tf.device(self.device):
            wrt = {p: kwargs.pop(p) for p in self.grad_params(impl)}
            value, grad = run(self.tensor(first, dtype), self.second_tensor(second, dtype), kwargs, wrt)
        return self.numpy(value), None if grad is None else self.pack_grads([self.numpy(g) for g in grad])

    # -- the table -------------------------------------------------------------------------------
    def implementations(self) -> list[Impl]:
        """tf.nn and keras.losses APIs that implement catalog losses."""
        import tensorflow as tf

        nn = tf.nn
        return [
            # -- tf.nn ---------------------------------------------------------------------------
            Impl(
                "softmax_cross_entropy", "tf.nn.softmax_cross_entropy_with_logits",
                lambda x, t, reduction, axis=-1: nn.softmax_cross_entropy_with_logits(
                    labels=t, logits=x, axis=axis),
                params=("axis",), reductions=("none",),
            ),
            Impl(
                "sparse_softmax_cross_entropy", "tf.nn.sparse_softmax_cross_entropy_with_logits",
                lambda x, t, reduction, axis=-1: nn.sparse_softmax_cross_entropy_with_logits(
                    labels=t, logits=x),
                params=("axis",), reductions=("none",), restrict=classes_last,
            ),
            Impl(
                "sigmoid_cross_entropy", "tf.nn.sigmoid_cross_entropy_with_logits",
                lambda x, t, reduction: nn.sigmoid_cross_entropy_with_logits(labels=t, logits=x),
                reductions=("none",),
            ),
            Impl(
                "sigmoid_cross_entropy", "tf.nn.weighted_cross_entropy_with_logits",
                lambda x, t, reduction, pos_weight=None: nn.weighted_cross_entropy_with_logits(
                    labels=t, logits=x, pos_weight=1.0 if pos_weight is None else pos_weight),
                params=("pos_weight",), reductions=("none",),
                note="pos_weight=1 when the case sets none",
            ),
            Impl(
                "ctc", "tf.nn.ctc_loss", _tf_ctc_loss,
                params=("blank", "input_lengths", "target_lengths"), reductions=("none",),
                dtypes=("float16", "bfloat16", "float32"),
                note="dense labels with label_length and logit_length, logits_time_major=False, blank_index=blank; "
                "float64 is unsupported (the op raises: \"cannot compute Mul as input #1 was expected to be a double "
                "tensor but is a float tensor\"); float16/bfloat16 are computed in float32 and cast back",
            ),
            Impl(
                "softmax", "tf.nn.softmax",
                lambda x, _, reduction, axis=-1: nn.softmax(x, axis=axis),
                params=("axis",), reductions=("none",),
            ),
            Impl(
                "log_softmax", "tf.nn.log_softmax",
                lambda x, _, reduction, axis=-1: nn.log_softmax(x, axis=axis),
                params=("axis",), reductions=("none",),
            ),
            Impl(
                "sigmoid", "tf.math.sigmoid", lambda x, _, reduction: tf.math.sigmoid(x), reductions=("none",),
                note="tf.nn.sigmoid is the same function",
            ),
            Impl(
                "poisson_nll", "tf.nn.log_poisson_loss",
                lambda x, t, reduction, log_input=True, full=False: nn.log_poisson_loss(
                    t, x, compute_full_loss=full),
                params=("log_input", "full"), reductions=("none",), restrict=_log_input_only,
                note="log-rate input; compute_full_loss adds the Stirling term where targets > 1",
            ),
        ] + keras_implementations()  # the Keras table shared with keras_jax and keras_torch


def _tape(impl: Impl):
    """(x, target, kwargs, wrt) -> (value, [d(sum value)/d(x), d/d(each tensor in wrt)] or None) with
    ``tf.GradientTape``; ``wrt`` holds the keyword arguments differentiated besides x."""
    import tensorflow as tf

    def run(x, target, kwargs, wrt):
        sources = [x, *wrt.values()]
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(sources)
            value = impl.fn(x, target, **kwargs, **wrt)
        if not impl.grad:
            return value, None
        return value, tape.gradient(value, sources, output_gradients=tf.ones_like(value),
                                    unconnected_gradients="zero")

    return run


def _api_params(impl: Impl, params: dict) -> dict:
    """``reduction`` and the parameters ``impl`` declares (others only reach it at their defaults)."""
    return {k: v for k, v in params.items() if k == "reduction" or k in impl.params}


def _log_input_only(params: dict, shape: tuple, second_shape: tuple | None = None) -> str | None:
    """tf.nn.log_poisson_loss takes log-rates."""
    return None if params.get("log_input", True) else "log_poisson_loss takes log-rates (log_input=True)"


def _pick_device(tf: Any) -> str:
    """LOSSCONF_DEVICE (cpu, gpu, cuda, gpu:1, ...) when set, else the first GPU, else the CPU."""
    requested = os.environ.get("LOSSCONF_DEVICE", "").strip().lower()
    if not requested:
        return "/GPU:0" if tf.config.list_physical_devices("GPU") else "/CPU:0"
    kind, _, index = requested.partition(":")
    kind = {"cuda": "GPU", "gpu": "GPU", "cpu": "CPU"}.get(kind)
    if kind is None:
        raise ValueError(f"LOSSCONF_DEVICE: {requested!r}; expected cpu, gpu or cuda, optionally ':N'")
    return f"/{kind}:{index or 0}"


def _tf_ctc_loss(x, labels, reduction, blank=0, input_lengths=None, target_lengths=None):
    """tf.nn.ctc_loss on batch-major logits; None lengths are the full T and S."""
    import tensorflow as tf

    n, t, s = tf.shape(x)[0], tf.shape(x)[1], tf.shape(labels)[1]
    logit_length = tf.fill([n], t) if input_lengths is None else tf.cast(input_lengths, tf.int32)
    label_length = tf.fill([n], s) if target_lengths is None else tf.cast(target_lengths, tf.int32)
    return tf.nn.ctc_loss(tf.cast(labels, tf.int32), x, label_length, logit_length, logits_time_major=False,
                          blank_index=blank)

