"""GPU-only fused cross-entropy kernels for language-model heads, on top of PyTorch.

- Liger-Kernel ``liger_fused_linear_cross_entropy`` (Triton): logits never materialised, gradients
  computed in the forward pass;
- cut-cross-entropy ``linear_cross_entropy`` (Triton, ``impl="cce"``): blockwise log-sum-exp; by default
  (``filter_eps="auto"``) it skips gradient blocks below a dtype-dependent threshold, a documented
  approximation, so it is run here with ``filter_eps=None`` (exact) as well;
- TransformerEngine ``parallel_cross_entropy`` (Triton): cross-entropy of logits, so composed with a
  matmul here (``composed=True``); its loss is float32 whatever the input dtype.

They need an NVIDIA GPU: ``available`` says *needs CUDA* (no driver) before anything is imported, so
on a CPU machine they are reported as skipped with that reason, and they run unchanged where a GPU
exists. Conversion, autodiff and the environment are the torch adapter's.
"""

from __future__ import annotations

from pathlib import Path

from lossconf.adapters.base import Impl
from lossconf.adapters.torch import TorchAdapter

_NVIDIA_DRIVER = Path("/proc/driver/nvidia/version")
_DTYPES = ("bfloat16", "float16", "float32")  # the Triton kernels' dtypes (no float64)
_LINEAR = ("linear_weight", "linear_bias", "ignore_index")


class _CudaOnly(TorchAdapter):
    """A torch-based adapter whose kernels exist only on CUDA devices."""

    def available(self) -> str | None:
        """'needs CUDA' without an NVIDIA driver, else whether the package is installed."""
        if not _NVIDIA_DRIVER.exists():
            return f"needs CUDA: {self.module} runs Triton kernels on NVIDIA GPUs ({_NVIDIA_DRIVER} is absent)"
        return super().available()

    def load(self) -> None:
        """Import torch and use the GPU (LOSSCONF_DEVICE may pick another CUDA device)."""
        super().load()
        if not self.device.startswith("cuda"):
            raise RuntimeError(f"{self.name}: needs a CUDA device, torch sees {self.device!r}")


def _ignore(ignore_index: int | None) -> int:
    return -100 if ignore_index is None else int(ignore_index)


class LigerAdapter(_CudaOnly):
    """Liger-Kernel's fused linear cross-entropy."""

    name = "liger"
    module = "liger_kernel"
    distributions = ("liger-kernel",)

    def implementations(self) -> list[Impl]:
        """liger_kernel.transformers.functional.liger_fused_linear_cross_entropy."""
        from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy

        def fn(h, y, reduction, linear_weight, linear_bias=None, label_smoothing=0.0, weight=None,
               ignore_index=None):
            return liger_fused_linear_cross_entropy(
                h, linear_weight, y, bias=linear_bias, ce_weight=weight, ignore_index=_ignore(ignore_index),
                label_smoothing=label_smoothing, reduction=reduction)

        return [Impl("linear_cross_entropy", "liger_kernel.transformers.functional.liger_fused_linear_cross_entropy",
                     fn, name="liger_fused_linear_cross_entropy", dtypes=_DTYPES,
                     params=(*_LINEAR, "label_smoothing", "weight"),
                     note="https://github.com/linkedin/Liger-Kernel (gradients computed in the forward pass)")]


class CutCrossEntropyAdapter(_CudaOnly):
    """Apple's cut-cross-entropy."""

    name = "cut_cross_entropy"
    module = "cut_cross_entropy"
    distributions = ("cut-cross-entropy",)

    def implementations(self) -> list[Impl]:
        """cut_cross_entropy.linear_cross_entropy with its default gradient filter and without it."""
        from cut_cross_entropy import linear_cross_entropy

        def cce(filter_eps):
            def fn(h, y, reduction, linear_weight, linear_bias=None, ignore_index=None):
                return linear_cross_entropy(h, linear_weight, y, bias=linear_bias, ignore_index=_ignore(ignore_index),
                                            reduction=reduction, filter_eps=filter_eps)
            return fn

        api = "cut_cross_entropy.linear_cross_entropy"
        return [
            Impl("linear_cross_entropy", api, cce("auto"), name="linear_cross_entropy[filter_eps=auto]",
                 dtypes=_DTYPES, params=_LINEAR,
                 note="default: gradient blocks below a dtype threshold are skipped "
                 "(https://github.com/apple/ml-cross-entropy, README 'gradient filtering')"),
            Impl("linear_cross_entropy", api, cce(None), name="linear_cross_entropy[filter_eps=None]",
                 dtypes=_DTYPES, params=_LINEAR, note="gradient filtering off: exact"),
        ]


class TransformerEngineAdapter(_CudaOnly):
    """NVIDIA TransformerEngine's (tensor-)parallel cross-entropy."""

    name = "transformer_engine"
    module = "transformer_engine"
    distributions = ("transformer-engine", "transformer_engine")

    def implementations(self) -> list[Impl]:
        """transformer_engine.pytorch.cross_entropy.parallel_cross_entropy of linear(h, W, b)."""
        import torch.nn.functional as F
        from transformer_engine.pytorch.cross_entropy import parallel_cross_entropy

        def fn(h, y, reduction, linear_weight, linear_bias=None, label_smoothing=0.0, ignore_index=None):
            logits = F.linear(h, linear_weight, linear_bias)[:, None, :]  # its layout: [SQ, B, V]
            loss = parallel_cross_entropy(logits, y[:, None], label_smoothing=label_smoothing,
                                          reduce_loss=reduction == "mean", ignore_idx=_ignore(ignore_index))
            loss = loss.reshape(-1) if reduction == "none" else loss
            return loss.to(h.dtype)  # float32 whatever the input: returned in the dtype under test

        return [Impl("linear_cross_entropy", "transformer_engine.pytorch.cross_entropy.parallel_cross_entropy", fn,
                     name="parallel_cross_entropy(linear)", composed=True, dtypes=_DTYPES,
                     params=(*_LINEAR, "label_smoothing"), reductions=("none", "mean"),
                     note="F.linear then parallel_cross_entropy on [N, 1, V] logits; loss cast from float32")]
