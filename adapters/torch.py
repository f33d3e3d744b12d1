"""PyTorch adapter: ``torch.nn.functional`` losses and building blocks.

Conventions a reader should know before the table:
- class-axis APIs (cross_entropy, nll_loss) put the classes on axis 1 (axis 0 for a 1-D input), so a
  case whose class axis is elsewhere is ``unsupported`` rather than transposed here;
- ``kl_div``'s own ``reduction="none"`` and ``"mean"`` are per element; canonical "mean" (over
  samples) is ``"batchmean"``, which divides by ``input.size(0)`` and so matches only for [N, C];
- ``ignore_index=None`` (catalog default) is torch's default -100.
All four dtypes run on CPU (torch 2.x has float16 and bfloat16 CPU kernels for every API below).

Modes: ``eager`` (the default) and ``compile``: ``torch.compile(fn, dynamic=False)`` (inductor; C++
kernels built with the host compiler on CPU), as users write ``torch.compile(loss_fn)(x, y)`` and
call backward: AOTAutograd compiles the backward graph too, so the gradient is the compiled one.
One compiled callable per (impl, dtype); dynamo keeps one graph per shape signature and scalar
parameters. Its recompile limit (8 by default, then it silently falls back to eager) is lifted and a
hit made an error, so a ``compile`` check never runs eager unnoticed. Inductor's on-disk caches live
in ``~/.cache/lossconf/torch`` (``TORCHINDUCTOR_CACHE_DIR``), kept across runs.
"""

from __future__ import annotations

import os
from typing import Any

import ml_dtypes
import numpy as np

from lossconf.adapters.base import Adapter, Impl
from lossconf.caches import cache_directory

_DOCS = "https://pytorch.org/docs/stable/generated/"
NONE = ("none",)  # building blocks have no reduction
# chunk settings of linear_cross_entropy's chunked path (torch.nn.LinearCrossEntropyOptions)
# (explicit row counts: the default chunking_method="auto" picks aspect-ratio chunks, 1 row per chunk for an
# LLM head with N <= V/D, measured 30x slower than options=None on CPU: benchmarks/scale.py)
CHUNKINGS = {
    "chunked,rows=32": {"batch_chunk_size": 32, "chunking_method": None},
    "chunked,rows=8": {"batch_chunk_size": 8, "chunking_method": None},
}


def _torch_class_axis(ndim: int) -> int:
    return 1 if ndim >= 2 else 0


def _class_axis_one(params: dict, shape: tuple, second_shape: tuple | None = None) -> str | None:
    """torch puts classes on axis 1 (axis 0 for a 1-D input); any other class axis is outside the API."""
    ndim = len(shape)
    axis = params.get("axis", -1)
    if ndim == 0 or axis % ndim != _torch_class_axis(ndim):
        return f"classes must be on axis {_torch_class_axis(max(ndim, 1))} (got axis={axis}, shape={shape})"
    return None


def _batchmean_needs_2d(params: dict, shape: tuple, second_shape: tuple | None = None) -> str | None:
    """'batchmean' divides by input.size(0): the canonical per-sample mean only for [N, C] inputs."""
    if params.get("reduction") == "mean" and len(shape) != 2:
        return f"kl_div 'batchmean' divides by size(0); canonical mean needs a 2-D input (got shape={shape})"
    return None


class TorchAdapter(Adapter):
    """PyTorch: torch.nn.functional losses, softmax/log_softmax and torch.sigmoid."""

    name = "torch"
    module = "torch"
    modes = ("eager", "compile")
    bounded_modes = ("compile",)  # a cold compile costs ~2 s per shape signature on a loaded 2-core CPU

    def load(self) -> None:
        """Import torch (inductor's cache under ~/.cache/lossconf/torch) and pick the device (CUDA when
        present; LOSSCONF_DEVICE overrides)."""
        cache = cache_directory("torch")
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache))
        import torch

        # dynamo is imported at the first compile or F.linear_cross_entropy call (0.9 s): importing it here
        # cost every worker start, 29 of them in the bug zoo's tests alone
        self._compiled: dict[tuple[str, str], Any] = {}

        self.device = os.environ.get("LOSSCONF_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")

    def environment(self) -> dict:
        """torch version, device and the flags that change float numerics."""
        import torch

        return {
            **super().environment(),
            "version": str(torch.__version__),  # a TorchVersion would import torch where unpickled
            "default_dtype": str(torch.get_default_dtype()),
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "cuda_matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "mkldnn_enabled": torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled,
            "num_threads": torch.get_num_threads(),
            "cuda": torch.version.cuda,
            "compile": "torch.compile(dynamic=False), backend inductor; cache "
            + os.environ.get("TORCHINDUCTOR_CACHE_DIR", ""),
        }

    # -- conversion -------------------------------------------------------------------------------
    def tensor(self, array: np.ndarray, dtype: str | None) -> Any:
        """A torch tensor holding ``array`` exactly (bfloat16 via float32, which is exact)."""
        import torch

        array = np.asarray(array)
        if dtype is None:
            return torch.from_numpy(array.copy()).to(self.device)
        if dtype == "bfloat16":
            return torch.from_numpy(array.astype(np.float32)).to(self.device, torch.bfloat16)
        return torch.from_numpy(array.astype(dtype)).to(self.device)

    def numpy(self, tensor: Any) -> np.ndarray:
        """The tensor as NumPy in its own dtype (bfloat16 as ml_dtypes.bfloat16, exact via float32)."""
        import torch

        tensor = tensor.detach().cpu()
        if tensor.dtype == torch.bfloat16:
            return tensor.float().numpy().astype(ml_dtypes.bfloat16)
        return tensor.numpy()

    def value_and_grad(
        self, impl: Impl, first: np.ndarray, second: np.ndarray | None, params: dict, dtype: str,
        mode: str = "eager",
    ) -> tuple[np.ndarray, np.ndarray | tuple | None]:
        """Value of ``impl.fn`` (eager, or its ``torch.compile`` in mode "compile") and d(sum value)/d(first)
        by torch.autograd with a cotangent of ones."""
        import torch

        fn = impl.fn
        if self.mode_of(mode) == "compile":
            key = (impl.name, dtype)
            if key not in self._compiled:
                import torch._dynamo.config as dynamo

                # one graph per shape signature: never fall back to eager after 8 of them without saying so
                dynamo.recompile_limit = dynamo.accumulated_recompile_limit = 1 << 20
                dynamo.fail_on_recompile_limit_hit = True
                self._compiled[key] = torch.compile(impl.fn, dynamic=False)
            fn = self._compiled[key]
        x = self.tensor(first, dtype).requires_grad_(impl.grad)
        kwargs = self.arguments(impl, params, dtype)
        wrt = [x, *(kwargs[p].requires_grad_(impl.grad) for p in self.grad_params(impl))]
        value = fn(x, self.second_tensor(second, dtype), **kwargs)
        if not impl.grad:
            return self.numpy(value), None
        if value.requires_grad:
            grads = torch.autograd.grad(value, wrt, grad_outputs=torch.ones_like(value), allow_unused=True)
        else:  # e.g. an empty batch: nothing depends on x
            grads = [None] * len(wrt)
        return self.numpy(value), self.pack_grads(
            [self.numpy(g if g is not None else torch.zeros_like(t)) for g, t in zip(grads, wrt, strict=True)])

    # -- the table --------------------------------------------------------------------------------
    def implementations(self) -> list[Impl]:
        """Every torch.nn.functional API that implements a catalog loss."""
        import torch
        import torch.nn.functional as F

        def ignore(ignore_index: int | None) -> int:
            return -100 if ignore_index is None else int(ignore_index)

        def cross_entropy(x, y, reduction, label_smoothing=0.0, weight=None, ignore_index=None, axis=-1):
            return F.cross_entropy(
                x, y, weight=weight, ignore_index=ignore(ignore_index), reduction=reduction,
                label_smoothing=label_smoothing,
            )

        def cross_entropy_probs(x, t, reduction, label_smoothing=0.0, weight=None, axis=-1):
            return F.cross_entropy(x, t, weight=weight, reduction=reduction, label_smoothing=label_smoothing)

        def nll_loss_log_softmax(x, y, reduction, weight=None, ignore_index=None, axis=-1):
            log_probs = F.log_softmax(x, dim=_torch_class_axis(x.dim()))
            return F.nll_loss(
                log_probs, y, weight=weight, ignore_index=ignore(ignore_index), reduction=reduction
            )

        def linear_ce(options=None, module=False):
            """F.linear_cross_entropy (or the LinearCrossEntropyLoss module) with chunking ``options``."""
            def fn(h, y, reduction, linear_weight, linear_bias=None, label_smoothing=0.0, weight=None,
                   ignore_index=None):
                kw = dict(weight=weight, reduction=reduction, ignore_index=ignore(ignore_index),
                          label_smoothing=label_smoothing, options=options)
                if not module:
                    return F.linear_cross_entropy(h, linear_weight, y, linear_bias=linear_bias, **kw)
                loss = torch.nn.LinearCrossEntropyLoss(h.shape[-1], linear_weight.shape[0], device="meta",
                                                       bias=linear_bias is not None, **kw)
                tensors = {"linear.weight": linear_weight}
                if linear_bias is not None:
                    tensors["linear.bias"] = linear_bias
                return torch.func.functional_call(loss, tensors, (h, y))
            return fn

        def linear_then_ce(h, y, reduction, linear_weight, linear_bias=None, **kwargs):
            return cross_entropy(F.linear(h, linear_weight, linear_bias), y, reduction, **kwargs)
        def ctc_loss(x, y, reduction, blank=0, input_lengths=None, target_lengths=None, zero_infinity=False):
            n, t = x.shape[:2]
            il = torch.full((n,), t, dtype=torch.long) if input_lengths is None else input_lengths
            tl = torch.full((n,), y.shape[1], dtype=torch.long) if target_lengths is None else target_lengths
            log_probs = F.log_softmax(x, dim=-1).transpose(0, 1)  # [T, N, C], as ctc_loss takes it
            return F.ctc_loss(log_probs, y, il, tl, blank=blank, reduction=reduction, zero_infinity=zero_infinity)

        def kl_div(log_q, p, reduction):
            return F.kl_div(log_q, p, reduction="batchmean" if reduction == "mean" else reduction)

        return [
            Impl(
                "sparse_softmax_cross_entropy", "torch.nn.functional.cross_entropy", cross_entropy,
                name="cross_entropy",
                params=("label_smoothing", "weight", "ignore_index", "axis"), restrict=_class_axis_one,
                note="class indices; mean divides by the summed weights of kept targets "
                "(" + _DOCS + "torch.nn.functional.cross_entropy.html)",
            ),
            Impl(
                "softmax_cross_entropy", "torch.nn.functional.cross_entropy", cross_entropy_probs,
                name="cross_entropy[probs]",
                params=("label_smoothing", "weight", "axis"), restrict=_class_axis_one,
                note="probability targets (same shape as input); mean divides by N, not by weights",
            ),
            Impl(
                "sparse_softmax_cross_entropy", "torch.nn.functional.nll_loss", nll_loss_log_softmax,
                name="nll_loss(log_softmax)", composed=True,
                params=("weight", "ignore_index", "axis"), restrict=_class_axis_one,
                note="nll_loss(log_softmax(x, dim=1), y): the composition the torch docs recommend",
            ),
            Impl(
                "sigmoid_cross_entropy", "torch.nn.functional.binary_cross_entropy_with_logits",
                lambda x, z, reduction, pos_weight=None: F.binary_cross_entropy_with_logits(
                    x, z, reduction=reduction, pos_weight=pos_weight
                ),
                name="binary_cross_entropy_with_logits", params=("pos_weight",),
            ),
            Impl(
                "binary_cross_entropy", "torch.nn.functional.binary_cross_entropy",
                lambda p, z, reduction: F.binary_cross_entropy(p, z, reduction=reduction),
                variant="log_clamp_-100",
            ),
            Impl(
                "mean_squared_error", "torch.nn.functional.mse_loss",
                lambda x, y, reduction: F.mse_loss(x, y, reduction=reduction),
            ),
            Impl(
                "mean_absolute_error", "torch.nn.functional.l1_loss",
                lambda x, y, reduction: F.l1_loss(x, y, reduction=reduction),
            ),
            Impl(
                "huber", "torch.nn.functional.huber_loss",
                lambda x, y, reduction, delta=1.0: F.huber_loss(x, y, reduction=reduction, delta=delta),
                params=("delta",),
            ),
            Impl(
                "smooth_l1", "torch.nn.functional.smooth_l1_loss",
                lambda x, y, reduction, beta=1.0: F.smooth_l1_loss(x, y, reduction=reduction, beta=beta),
                params=("beta",),
            ),
            Impl(
                "poisson_nll", "torch.nn.functional.poisson_nll_loss",
                lambda x, y, reduction, log_input=True, full=False: F.poisson_nll_loss(
                    x, y, log_input=log_input, full=full, reduction=reduction),
                params=("log_input", "full"), variant="poisson_log_offset_1e-8",
                note="eps=1e-8 (the default) is added inside the log when log_input=False",
            ),
            Impl(
                "cosine_similarity", "torch.nn.functional.cosine_similarity",
                lambda x, y, reduction, axis=-1: F.cosine_similarity(x, y, dim=axis),
                params=("axis",), reductions=NONE, variant="cosine_norm_floor_1e-8",
                note="eps=1e-8 (the default) floors each norm; cosine_embedding_loss adds 1e-12 to the squared "
                "norms instead and takes +-1 labels, so it is not a row",
            ),
            Impl(
                "ctc", "torch.nn.functional.ctc_loss", ctc_loss,
                params=("blank", "input_lengths", "target_lengths", "zero_infinity"), dtypes=("float32", "float64"),
                variant="ctc_mean_over_target_lengths",
                note="log_probs = log_softmax(x) transposed to [T, N, C] (the documented input); float16 and bfloat16 "
                "are unsupported on CPU (\"ctc_loss_cpu\" not implemented for 'Half' / 'BFloat16'); 'mean' divides "
                "by the target lengths (" + _DOCS + "torch.nn.CTCLoss.html)",
            ),
            Impl(
                "kl_divergence", "torch.nn.functional.kl_div", kl_div,
                reductions=("mean", "sum"), restrict=_batchmean_needs_2d,
                note="input is log q, target p (log_target=False); canonical mean is 'batchmean'; "
                "torch's own 'none'/'mean' are per element, so 'none' is left out",
            ),
            Impl("softmax", "torch.nn.functional.softmax",
                 lambda x, _, reduction, axis=-1: F.softmax(x, dim=axis), params=("axis",), reductions=NONE),
            Impl("log_softmax", "torch.nn.functional.log_softmax",
                 lambda x, _, reduction, axis=-1: F.log_softmax(x, dim=axis),
                 params=("axis",), reductions=NONE),
            Impl("sigmoid", "torch.sigmoid", lambda x, _, reduction: torch.sigmoid(x), reductions=NONE,
                 note="torch.nn.functional.sigmoid is the same kernel"),
            *self._linear_cross_entropy(linear_ce, linear_then_ce),
        ]

    @staticmethod
    def _linear_cross_entropy(linear_ce, linear_then_ce) -> list[Impl]:
        """F.linear_cross_entropy on its reference path and on the chunked path (CHUNKINGS), the
        LinearCrossEntropyLoss module, and cross_entropy(linear(h, W, b)) composed."""
        from torch.nn import LinearCrossEntropyOptions

        api = "torch.nn.functional.linear_cross_entropy"
        docs = _DOCS + "torch.nn.functional.linear_cross_entropy.html"
        every = ("label_smoothing", "weight", "ignore_index", "linear_weight", "linear_bias")
        # the chunked path needs label_smoothing == 0 (else options are ignored with a warning: functional.py)
        chunked = ("weight", "ignore_index", "linear_weight", "linear_bias")
        return [
            Impl("linear_cross_entropy", api, linear_ce(), name="linear_cross_entropy", params=every,
                 note="options=None: the reference path, linear then cross_entropy (" + docs + ")"),
            *(Impl("linear_cross_entropy", api, linear_ce(LinearCrossEntropyOptions(**kw)),
                   name=f"linear_cross_entropy[{label}]", params=chunked,
                   note=f"options=LinearCrossEntropyOptions({', '.join(f'{k}={v!r}' for k, v in kw.items())}): "
                   "chunked over the batch, gradients precomputed in forward")
              for label, kw in CHUNKINGS.items()),
            Impl("linear_cross_entropy", "torch.nn.LinearCrossEntropyLoss", linear_ce(module=True),
                 name="LinearCrossEntropyLoss", params=every,
                 note="the module's linear.weight/linear.bias set by torch.func.functional_call; options=None"),
            Impl("linear_cross_entropy", "torch.nn.functional.cross_entropy", linear_then_ce,
                 name="cross_entropy(linear)", params=every, composed=True,
                 note="cross_entropy(F.linear(h, W, b), y): the logits materialised"),
        ]
