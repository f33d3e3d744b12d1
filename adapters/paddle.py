"""PaddlePaddle adapter: ``paddle.nn.functional`` losses and building blocks (paddle >= 2.6).

Conventions a reader should know before the table:
- paddle's CPU kernels exist for float32 and float64 only (float16/bfloat16 raise "kernel ... is not
  registered"); on a GPU all four dtypes are declared;
- ``cross_entropy`` takes hard labels of shape [N] or [N, 1] and any class ``axis``; with
  ``soft_label=True`` (or ``label_smoothing > 0``) its ``reduction="none"`` keeps the class axis with
  size 1, which the adapter squeezes so that "none" is one value per sample as the catalog says;
- ``label_smoothing > 0`` turns the hard labels into smoothed soft labels: ignore_index no longer
  applies and class weights follow the soft-label rule (loss * sum_c w_c t_c), so that path is its own
  row without those parameters;
- ``kl_div``'s own "none"/"mean" are per element; canonical "mean" (over samples) is "batchmean";
- ``ignore_index=None`` (catalog default) is paddle's default -100;
- ``nll_loss`` with reduction "mean"/"sum" and an ``ignore_index`` is declared unsupported: its CPU
  kernel writes one output element per ignored label past its 1-element result (heap corruption that
  crashes or hangs the worker and can poison later calls);
- ``label_smoothing`` on soft labels needs the classes on the last axis (label_smooth divides by
  shape[-1]), so other class axes are declared unsupported there.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import ml_dtypes
import numpy as np

from lossconf.adapters.base import UNSUPPORTED, Adapter, Impl, Reason

_DOCS = "https://paddlepaddle.org.cn/documentation/docs/en/api/paddle/nn/functional/"
_SRC = "https://github.com/PaddlePaddle/Paddle/blob/develop/paddle/phi/kernels/"
_CPU_DTYPES = ("float32", "float64")
NONE = ("none",)  # building blocks have no reduction


def _batchmean_needs_2d(params: dict, shape: tuple, second_shape: tuple | None = None) -> str | None:
    """'batchmean' divides by input.shape[0]: the canonical per-sample mean only for [N, C] inputs."""
    if params.get("reduction") == "mean" and len(shape) != 2:
        return f"kl_div 'batchmean' divides by shape[0]; canonical mean needs a 2-D input (got shape={shape})"
    return None


def _class_axis_one(params: dict, shape: tuple, second_shape: tuple | None = None) -> str | None:
    """nll_loss puts classes on axis 1 (input [N, C] or [N, C, d...])."""
    ndim = len(shape)
    axis = params.get("axis", -1)
    if ndim < 2 or axis % ndim != 1:
        return f"nll_loss needs classes on axis 1 of an input of rank >= 2 (got axis={axis}, shape={shape})"
    return None


def _nll_loss_safe(params: dict, shape: tuple, second_shape: tuple | None = None) -> str | Reason | None:
    """Classes on axis 1, and no reduced call that may meet an ignored label (see the reason)."""
    why = _class_axis_one(params, shape, second_shape)
    if why is None and params.get("reduction") != "none" and params.get("ignore_index") is not None:
        # nll_loss_kernel.cc writes out_data[i] = 0 for every ignored label although a reduced output
        # has one element: a heap overflow (glibc aborts, or later calls return garbage)
        why = Reason("nll_loss CPU kernel writes past its 1-element output for ignored labels under "
                     "reduction='mean'/'sum' (heap corruption): " + _SRC + "cpu/nll_loss_kernel.cc", UNSUPPORTED)
    return why


def _smoothing_on_last_axis(params: dict, shape: tuple, second_shape: tuple | None = None) -> str | None:
    """label_smooth smooths over the last axis (eps / shape[-1]); the docs give labels as [..., C]."""
    axis = params.get("axis", -1)
    if params.get("label_smoothing") and len(shape) and axis % len(shape) != len(shape) - 1:
        return (f"label_smoothing needs the classes on the last axis: label_smooth divides eps by "
                f"shape[-1] (got axis={axis}, shape={shape})")
    return None


def _smoothing_only(params: dict, shape: tuple, second_shape: tuple | None = None) -> str | None:
    """The label-smoothing row covers label_smoothing > 0; eps = 0 is the plain cross_entropy row."""
    if not params.get("label_smoothing"):
        return "label_smoothing = 0 is covered by the plain cross_entropy row"
    return None


class PaddleAdapter(Adapter):
    """PaddlePaddle: paddle.nn.functional losses, softmax/log_softmax/sigmoid and label_smooth."""

    name = "paddle"
    module = "paddle"
    distributions = ("paddlepaddle", "paddlepaddle-gpu")  # the wheels are named differently from the module

    def load(self) -> None:
        """Import paddle quietly and pick the device (GPU when present; LOSSCONF_DEVICE overrides)."""
        os.environ.setdefault("GLOG_minloglevel", "2")  # C++ INFO/WARNING lines
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No ccache found")
            import paddle
        wanted = os.environ.get("LOSSCONF_DEVICE", "")
        if not wanted:
            wanted = "gpu" if paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() else "cpu"
        paddle.set_device(wanted.replace("cuda", "gpu"))
        self.device = paddle.device.get_device()  # "cpu" or "gpu:0"

    def environment(self) -> dict:
        """paddle version, device and the flags that change float numerics."""
        import paddle

        flags = paddle.get_flags(["FLAGS_use_onednn", "FLAGS_use_mkldnn", "FLAGS_check_nan_inf"])
        return {
            **super().environment(),
            "version": paddle.__version__,
            "default_dtype": paddle.get_default_dtype(),
            "cuda": paddle.version.cuda(),
            "cudnn": paddle.version.cudnn(),
            **flags,
        }

    def _dtypes(self) -> tuple[str, ...]:
        return _CPU_DTYPES if self.device.startswith("cpu") else ("float16", "bfloat16", "float32", "float64")

    # -- conversion -------------------------------------------------------------------------------
    def tensor(self, array: np.ndarray, dtype: str | None) -> Any:
        """A paddle tensor holding ``array`` exactly (bfloat16 via float32, which is exact)."""
        import paddle

        array = np.asarray(array)
        if dtype is None:
            return paddle.to_tensor(array)
        if dtype == "bfloat16":
            return paddle.to_tensor(array.astype(np.float32)).astype("bfloat16")
        return paddle.to_tensor(array.astype(dtype))

    def numpy(self, tensor: Any) -> np.ndarray:
        """The tensor as NumPy in its own dtype (bfloat16 as ml_dtypes.bfloat16, exact via float32)."""
        import paddle

        if tensor.dtype == paddle.bfloat16:
            return tensor.astype("float32").numpy().astype(ml_dtypes.bfloat16)
        return tensor.numpy()

    def value_and_grad(
        self, impl: Impl, first: np.ndarray, second: np.ndarray | None, params: dict, dtype: str
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Value of ``impl.fn`` and d(sum value)/d(first) by paddle.grad with a cotangent of ones."""
        import paddle

        x = self.tensor(first, dtype)
        x.stop_gradient = not impl.grad
        value = impl.fn(x, self.second_tensor(second, dtype), **self.arguments(impl, params, dtype))
        if not impl.grad:
            return self.numpy(value), None
        grad = None
        if not value.stop_gradient:
            (grad,) = paddle.grad([value], [x], grad_outputs=[paddle.ones_like(value)], allow_unused=True)
        return self.numpy(value), self.numpy(grad if grad is not None else paddle.zeros_like(x))

    # -- the table --------------------------------------------------------------------------------
    def implementations(self) -> list[Impl]:
        """Every paddle.nn.functional API that implements a catalog loss."""
        import paddle
        import paddle.nn.functional as F

        def ignore(ignore_index: int | None) -> int:
            return -100 if ignore_index is None else int(ignore_index)

        def ctc_loss(x, y, reduction, blank=0, input_lengths=None, target_lengths=None):
            n, t = x.shape[:2]
            il = paddle.full([n], t, dtype="int64") if input_lengths is None else input_lengths
            tl = paddle.full([n], y.shape[1], dtype="int64") if target_lengths is None else target_lengths
            loss = F.ctc_loss(paddle.transpose(x, [1, 0, 2]), y.astype("int32"), il, tl, blank=blank,
                              reduction=reduction)
            return paddle.reshape(loss, [n]) if reduction == "none" else loss  # [N, 1] (N = 1: a scalar)

        def per_sample(loss, reduction: str, axis: int):
            # soft-label paths keep the class axis with size 1 under reduction="none"
            return paddle.squeeze(loss, axis=axis) if reduction == "none" else loss

        def cross_entropy(x, y, reduction, weight=None, ignore_index=None, axis=-1):
            return F.cross_entropy(
                x, y, weight=weight, ignore_index=ignore(ignore_index), reduction=reduction, axis=axis
            )

        def cross_entropy_smoothed(x, y, reduction, label_smoothing=0.0, axis=-1):
            loss = F.cross_entropy(x, y, reduction=reduction, axis=axis, label_smoothing=label_smoothing)
            return per_sample(loss, reduction, axis)

        def cross_entropy_soft(x, t, reduction, label_smoothing=0.0, axis=-1):
            loss = F.cross_entropy(
                x, t, soft_label=True, reduction=reduction, axis=axis, label_smoothing=label_smoothing
            )
            return per_sample(loss, reduction, axis)

        def cross_entropy_probs(p, t, reduction, axis=-1):
            loss = F.cross_entropy(p, t, soft_label=True, use_softmax=False, reduction=reduction, axis=axis)
            return per_sample(loss, reduction, axis)

        def softmax_with_cross_entropy(x, y, reduction, ignore_index=None, axis=-1):
            labels = paddle.unsqueeze(y, axis=axis)  # this legacy API wants the class axis kept, size 1
            with warnings.catch_warnings():  # deprecated since 2.0 but still public
                warnings.simplefilter("ignore")
                loss = F.softmax_with_cross_entropy(x, labels, ignore_index=ignore(ignore_index), axis=axis)
            return paddle.squeeze(loss, axis=axis)

        def nll_loss_log_softmax(x, y, reduction, weight=None, ignore_index=None, axis=-1):
            log_probs = F.log_softmax(x, axis=1)
            return F.nll_loss(
                log_probs, y, weight=weight, ignore_index=ignore(ignore_index), reduction=reduction
            )

        def kl_div(log_q, p, reduction):
            return F.kl_div(log_q, p, reduction="batchmean" if reduction == "mean" else reduction)

        dtypes = self._dtypes()
        return [
            Impl(
                "sparse_softmax_cross_entropy", "paddle.nn.functional.cross_entropy", cross_entropy,
                name="cross_entropy", dtypes=dtypes, params=("weight", "ignore_index", "axis"),
                variant="all_ignored_zero",
                note="hard labels [N]; mean divides by the summed weights of kept labels and returns 0 "
                "when every label is ignored (" + _DOCS + "cross_entropy_en.html)",
            ),
            Impl(
                "sparse_softmax_cross_entropy", "paddle.nn.functional.cross_entropy", cross_entropy_smoothed,
                name="cross_entropy[label_smoothing]", dtypes=dtypes, params=("label_smoothing",),
                restrict=_smoothing_only,
                note="hard labels one-hot encoded on the last axis, then label_smooth (eps/C); "
                "ignore_index does not apply and weights follow the soft-label rule, so neither is declared",
            ),
            Impl(
                "softmax_cross_entropy", "paddle.nn.functional.cross_entropy", cross_entropy_soft,
                name="cross_entropy[soft_label]", dtypes=dtypes, params=("label_smoothing", "axis"),
                restrict=_smoothing_on_last_axis,
                note="soft_label=True; weight is not declared: paddle scales each sample's loss by "
                "sum_c w_c t_c instead of weighting each class term",
            ),
            Impl(
                "categorical_cross_entropy", "paddle.nn.functional.cross_entropy", cross_entropy_probs,
                name="cross_entropy(use_softmax=False)[soft_label]", dtypes=dtypes, params=("axis",),
                note="input is probabilities (use_softmax=False), targets soft labels",
            ),
            Impl(
                "sparse_softmax_cross_entropy", "paddle.nn.functional.softmax_with_cross_entropy",
                softmax_with_cross_entropy, dtypes=dtypes, params=("ignore_index", "axis"),
                reductions=("none",),
                note="legacy API, no reduction; labels and result keep the class axis with size 1",
            ),
            Impl(
                "sparse_softmax_cross_entropy", "paddle.nn.functional.nll_loss", nll_loss_log_softmax,
                name="nll_loss(log_softmax)", composed=True, dtypes=dtypes,
                params=("weight", "ignore_index", "axis"), restrict=_nll_loss_safe, variant="all_ignored_zero",
                note="nll_loss(log_softmax(x, axis=1), y); mean over no kept label (or N = 0) is 0",
            ),
            Impl(
                "sigmoid_cross_entropy", "paddle.nn.functional.binary_cross_entropy_with_logits",
                lambda x, z, reduction, pos_weight=None: F.binary_cross_entropy_with_logits(
                    x, z, reduction=reduction, pos_weight=pos_weight
                ),
                name="binary_cross_entropy_with_logits", dtypes=dtypes, params=("pos_weight",),
            ),
            Impl(
                "binary_cross_entropy", "paddle.nn.functional.binary_cross_entropy",
                lambda p, z, reduction: F.binary_cross_entropy(p, z, reduction=reduction),
                dtypes=dtypes, variant="log_clamp_-100",
                note="each log term is clamped to >= -100 like torch's BCELoss",
            ),
            Impl(
                "mean_squared_error", "paddle.nn.functional.mse_loss",
                lambda x, y, reduction: F.mse_loss(x, y, reduction=reduction), dtypes=dtypes,
            ),
            Impl(
                "mean_squared_error", "paddle.nn.functional.square_error_cost",
                lambda x, y, reduction: F.square_error_cost(x, y), dtypes=dtypes, reductions=("none",),
                note="elementwise (x - y)^2, no reduction argument",
            ),
            Impl(
                "mean_absolute_error", "paddle.nn.functional.l1_loss",
                lambda x, y, reduction: F.l1_loss(x, y, reduction=reduction), dtypes=dtypes,
            ),
            Impl(
                "sigmoid_focal_loss", "paddle.nn.functional.sigmoid_focal_loss",
                lambda x, z, reduction, alpha=None, gamma=2.0: F.sigmoid_focal_loss(
                    x, z, alpha=alpha, gamma=gamma, reduction=reduction),
                dtypes=dtypes, params=("alpha", "gamma"), restrict=_alpha_given,
                note="alpha is always applied (no unweighted form); normalizer=None",
            ),
            Impl(
                "ctc", "paddle.nn.functional.ctc_loss", ctc_loss,
                params=("blank", "input_lengths", "target_lengths"), dtypes=("float32", "float64"),
                variant="ctc_mean_over_target_lengths", isolate=True,  # SIGFPE on empty targets (known)
                note="logits transposed to [T, N, C] (warpctc applies the softmax itself); labels int32; float16 and "
                "bfloat16 are unsupported on CPU (no warpctc kernel); 'mean' divides by the label lengths",
            ),
            Impl(
                "cosine_similarity", "paddle.nn.functional.cosine_similarity",
                lambda x, y, reduction, axis=-1: F.cosine_similarity(x, y, axis=axis),
                dtypes=dtypes, params=("axis",), reductions=NONE, variant="cosine_product_floor_1e-8",
            ),
            Impl(
                "huber", "paddle.nn.functional.smooth_l1_loss",
                lambda x, y, reduction, delta=1.0: F.smooth_l1_loss(x, y, reduction=reduction, delta=delta),
                name="smooth_l1_loss", dtypes=dtypes, params=("delta",),
                note="paddle's smooth_l1_loss is the Huber loss (is_huber=True, the default): "
                + _DOCS + "smooth_l1_loss_en.html",
            ),
            Impl(
                "smooth_l1", "paddle.nn.functional.smooth_l1_loss",
                lambda x, y, reduction, beta=1.0: F.smooth_l1_loss(
                    x, y, reduction=reduction, delta=beta, is_huber=False),
                name="smooth_l1_loss(is_huber=False)", dtypes=dtypes, params=("beta",), restrict=_positive_beta,
                note="is_huber=False divides the Huber loss by delta: torch's smooth_l1_loss with beta = delta",
            ),
            Impl(
                "poisson_nll", "paddle.nn.functional.poisson_nll_loss",
                lambda x, y, reduction, log_input=True, full=False: F.poisson_nll_loss(
                    x, y, log_input=log_input, full=full, reduction=reduction),
                dtypes=dtypes, params=("log_input", "full"), variant="poisson_log_offset_1e-8",
                note="epsilon=1e-8 (the default) is added inside the log when log_input=False",
            ),
            Impl(
                "kl_divergence", "paddle.nn.functional.kl_div", kl_div, dtypes=dtypes,
                reductions=("mean", "sum"), restrict=_batchmean_needs_2d,
                note="input is log q, label p (log_target=False); canonical mean is 'batchmean'; "
                "paddle's own 'none'/'mean' are per element, so 'none' is left out",
            ),
            Impl("softmax", "paddle.nn.functional.softmax",
                 lambda x, _, reduction, axis=-1: F.softmax(x, axis=axis),
                 dtypes=dtypes, params=("axis",), reductions=NONE),
            Impl("log_softmax", "paddle.nn.functional.log_softmax",
                 lambda x, _, reduction, axis=-1: F.log_softmax(x, axis=axis),
                 dtypes=dtypes, params=("axis",), reductions=NONE),
            Impl("sigmoid", "paddle.nn.functional.sigmoid",
                 lambda x, _, reduction: F.sigmoid(x), dtypes=dtypes, reductions=NONE),
            Impl(
                "smooth_labels", "paddle.nn.functional.label_smooth",
                lambda y, _, reduction, label_smoothing=0.0: F.label_smooth(y, epsilon=label_smoothing),
                dtypes=dtypes, params=("label_smoothing",), reductions=NONE,
                note="uniform prior (prior_dist=None): (1 - eps) y + eps / C",
            ),
        ]


def _positive_beta(params: dict, shape: tuple, second_shape: tuple | None = None) -> str | None:
    """is_huber=False divides by delta, which must be > 0 (paddle ignores delta <= 0)."""
    if params.get("beta", 1.0) > 0:
        return None
    return "smooth_l1_loss(is_huber=False) divides by delta: beta = 0 is outside the API (delta must be > 0)"


def _alpha_given(params: dict, shape: tuple, second_shape: tuple | None = None) -> str | None:
    """paddle's sigmoid_focal_loss always weights by alpha (default 0.25): the unweighted form is not offered."""
    return None if params.get("alpha") is not None else "sigmoid_focal_loss always applies alpha (no alpha=None)"
