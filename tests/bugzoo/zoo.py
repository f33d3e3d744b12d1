"""The bug zoo: deliberately broken PyTorch adapters, one plausible mistake each.

Each member is the real torch adapter (conversion, autodiff, known deviations) with its table
replaced by one broken ``Impl`` row, named like the torch row it imitates so that torch's registered
known deviations apply to it exactly as to the correct row. ``lossconf check-adapter`` must exit 1 on
every member (``tests/test_bug_zoo.py``); ``benchmarks/bug_zoo.py`` measures which check catches it.

Class attributes: ``mistake`` (what is wrong, one line), ``loss`` (the broken Impl's loss id),
``budget`` (random cases per loss the zoo run uses). Importing this module never imports torch:
every torch use is inside ``implementations()``, which runs in the adapter's worker process.
"""

from __future__ import annotations

from pathlib import Path

import lossconf
from lossconf.adapters.base import Impl
from lossconf.adapters.torch import TorchAdapter

TORCH_KNOWN = str(Path(lossconf.__file__).parent / "known" / "torch.toml")
SPARSE = "sparse_softmax_cross_entropy"


def _axis1(params: dict, shape: tuple, second_shape: tuple | None = None) -> str | None:
    """Like torch: classes on axis 1 (axis 0 for 1-D)."""
    ndim = len(shape)
    want = 1 if ndim >= 2 else 0
    if ndim == 0 or params.get("axis", -1) % ndim != want:
        return f"classes must be on axis {want}"
    return None


def _rows(params: dict, shape: tuple, second_shape: tuple | None = None) -> str | None:
    """The composed members handle [N, C] with classes last only."""
    if len(shape) != 2 or params.get("axis", -1) % 2 != 1:
        return f"composed for [N, C] inputs with classes last (got shape={shape})"
    return None


def _reduce(per_sample, reduction: str):
    """Canonical reduction of per-sample values (the part most members get right)."""
    if reduction == "none":
        return per_sample
    return per_sample.sum() if reduction == "sum" else per_sample.mean()


class ZooAdapter(TorchAdapter):
    """Base of the zoo: torch's conversion and autodiff, torch's known deviations, one broken row."""

    known_deviations = TORCH_KNOWN
    mistake = ""
    loss = ""
    budget = 4

    def broken(self) -> list[Impl]:
        """The broken row(s); torch is importable here."""
        raise NotImplementedError

    def implementations(self) -> list[Impl]:
        """Only the broken row(s)."""
        return self.broken()


class DoubleSoftmax(ZooAdapter):
    """cross_entropy applied to softmax outputs instead of logits (softmax taken twice)."""

    name = "zoo_double_softmax"
    mistake = "softmax applied before F.cross_entropy, which applies log_softmax again"
    loss = SPARSE

    def broken(self):
        import torch.nn.functional as F

        def fn(x, y, reduction, axis=-1):
            return F.cross_entropy(F.softmax(x, dim=1 if x.dim() > 1 else 0), y, reduction=reduction)

        return [Impl(SPARSE, "torch.nn.functional.cross_entropy", fn, name="cross_entropy",
                     params=("axis",), restrict=_axis1)]


class SmoothingOverCMinus1(ZooAdapter):
    """Label smoothing spreads eps over the C-1 wrong classes, and the row does not declare the variant."""

    name = "zoo_smoothing_c_minus_1"
    mistake = "label smoothing eps/(C-1) on the other classes instead of eps/C on all, variant not declared"
    loss = SPARSE
    budget = 8  # two random cases with optional params; the first with smoothing is rand_..._009

    def broken(self):
        import torch.nn.functional as F

        def fn(x, y, reduction, label_smoothing=0.0, axis=-1):
            logp = F.log_softmax(x, dim=-1)
            c = x.shape[-1]
            onehot = F.one_hot(y, c).to(x.dtype)
            t = (1 - label_smoothing) * onehot + label_smoothing / max(c - 1, 1) * (1 - onehot)
            return _reduce(-(t * logp).sum(-1), reduction)

        return [Impl(SPARSE, "torch.nn.functional.log_softmax", fn, name="cross_entropy", composed=True,
                     params=("label_smoothing", "axis"), restrict=_rows)]


class SumForMean(ZooAdapter):
    """reduction='mean' passed on as 'sum'."""

    name = "zoo_sum_for_mean"
    mistake = "reduction 'mean' mapped to the API's 'sum'"
    loss = "mean_squared_error"

    def broken(self):
        import torch.nn.functional as F

        def fn(x, y, reduction):
            return F.mse_loss(x, y, reduction="sum" if reduction == "mean" else reduction)

        return [Impl("mean_squared_error", "torch.nn.functional.mse_loss", fn, name="mse_loss")]


class MeanOverElements(ZooAdapter):
    """Soft-target cross-entropy whose mean divides by N*C (all elements) instead of N (samples)."""

    name = "zoo_mean_over_elements"
    mistake = "mean over all N*C elements instead of over the N samples"
    loss = "softmax_cross_entropy"

    def broken(self):
        import torch.nn.functional as F

        def fn(x, t, reduction, axis=-1):
            elements = -(t * F.log_softmax(x, dim=-1))
            if reduction == "mean":
                return elements.mean()
            return elements.sum() if reduction == "sum" else elements.sum(-1)

        return [Impl("softmax_cross_entropy", "torch.nn.functional.log_softmax", fn, name="cross_entropy[probs]",
                     composed=True, params=("axis",), restrict=_rows)]


class NaiveSigmoidCE(ZooAdapter):
    """Sigmoid cross-entropy as -[z log sigmoid(x) + (1-z) log(1 - sigmoid(x))]: overflows for large |x|."""

    name = "zoo_naive_sigmoid_ce"
    mistake = "log(sigmoid(x)) and log(1 - sigmoid(x)) instead of the stable softplus form"
    loss = "sigmoid_cross_entropy"

    def broken(self):
        import torch

        def fn(x, z, reduction):
            s = torch.sigmoid(x)
            return _reduce(-(z * torch.log(s) + (1 - z) * torch.log(1 - s)), reduction)

        return [Impl("sigmoid_cross_entropy", "torch.sigmoid", fn, name="binary_cross_entropy_with_logits",
                     composed=True)]


class UnstableLogSoftmax(ZooAdapter):
    """log(softmax) computed as log(exp(x) / sum exp(x)) without subtracting the maximum."""

    name = "zoo_unstable_log_softmax"
    mistake = "log(exp(x) / sum(exp(x))) without max-subtraction: exp overflows"
    loss = "log_softmax"

    def broken(self):
        import torch

        def fn(x, _, reduction, axis=-1):
            e = torch.exp(x)
            return torch.log(e / e.sum(dim=axis, keepdim=True))

        return [Impl("log_softmax", "torch.exp", fn, name="log_softmax", composed=True, params=("axis",),
                     reductions=("none",))]


class ClippedLogitsPath(ZooAdapter):
    """Cross-entropy from logits via softmax probabilities clipped to [1e-7, 1 - 1e-7]."""

    name = "zoo_clipped_logits_path"
    mistake = "softmax probabilities clipped at 1e-7 before the log on the logits path"
    loss = SPARSE

    def broken(self):
        import torch
        import torch.nn.functional as F

        def fn(x, y, reduction, axis=-1):
            p = F.softmax(x, dim=1).clamp(1e-7, 1 - 1e-7)
            return F.nll_loss(torch.log(p), y, reduction=reduction)

        return [Impl(SPARSE, "torch.nn.functional.nll_loss", fn, name="cross_entropy", composed=True,
                     params=("axis",), restrict=_axis1)]


class Float32OnFloat64(ZooAdapter):
    """Computes in float32 whatever the input dtype, then casts back (float64 loses half its digits)."""

    name = "zoo_float32_on_float64"
    mistake = "inputs cast to float32 for the computation and back to the input dtype"
    loss = SPARSE

    def broken(self):
        import torch
        import torch.nn.functional as F

        def fn(x, y, reduction, axis=-1):
            return F.cross_entropy(x.to(torch.float32), y, reduction=reduction).to(x.dtype)

        return [Impl(SPARSE, "torch.nn.functional.cross_entropy", fn, name="cross_entropy", params=("axis",),
                     restrict=_axis1)]


class ClassAxisFirst(ZooAdapter):
    """softmax over axis 0 (the batch) instead of the class axis."""

    name = "zoo_class_axis_first"
    mistake = "softmax taken over dim 0 (samples) instead of the class axis"
    loss = "softmax"

    def broken(self):
        import torch.nn.functional as F

        def fn(x, _, reduction, axis=-1):
            return F.softmax(x, dim=0)

        return [Impl("softmax", "torch.nn.functional.softmax", fn, name="softmax", params=("axis",),
                     reductions=("none",))]


class LabelsShifted(ZooAdapter):
    """Labels treated as 1-based: shifted down by one, with -1 (the old class 0) ignored."""

    name = "zoo_labels_shifted"
    mistake = "labels shifted by one (1-based assumed): y - 1, and class 0 becomes ignored"
    loss = SPARSE

    def broken(self):
        import torch.nn.functional as F

        def fn(x, y, reduction, axis=-1):
            return F.cross_entropy(x, y - 1, ignore_index=-1, reduction=reduction)

        return [Impl(SPARSE, "torch.nn.functional.cross_entropy", fn, name="cross_entropy", params=("axis",),
                     restrict=_axis1)]


class HalvedMSE(ZooAdapter):
    """0.5 (x - y)^2 (the optax l2_loss convention) without declaring the half_squared_error variant."""

    name = "zoo_halved_mse"
    mistake = "squared error halved, variant not declared"
    loss = "mean_squared_error"

    def broken(self):
        import torch.nn.functional as F

        def fn(x, y, reduction):
            return 0.5 * F.mse_loss(x, y, reduction=reduction)

        return [Impl("mean_squared_error", "torch.nn.functional.mse_loss", fn, name="mse_loss")]


class MSEWithoutSquare(ZooAdapter):
    """|x - y| where (x - y)^2 was meant (l1_loss wired to the MSE row)."""

    name = "zoo_mse_without_square"
    mistake = "mean squared error computed without the square (l1_loss)"
    loss = "mean_squared_error"

    def broken(self):
        import torch.nn.functional as F

        def fn(x, y, reduction):
            return F.l1_loss(x, y, reduction=reduction)

        return [Impl("mean_squared_error", "torch.nn.functional.l1_loss", fn, name="mse_loss")]


class GradMissingOneOverN(ZooAdapter):
    """A custom autograd.Function for MSE whose backward forgets the 1/n of the mean."""

    name = "zoo_grad_missing_1_over_n"
    mistake = "hand-written MSE backward returns 2(x - y) for reduction mean, without the 1/n"
    loss = "mean_squared_error"

    def broken(self):
        import torch
        import torch.nn.functional as F

        class MSE(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x, y, reduction):
                ctx.save_for_backward(x, y)
                ctx.reduction = reduction
                return F.mse_loss(x, y, reduction=reduction)

            @staticmethod
            def backward(ctx, g):
                x, y = ctx.saved_tensors
                return (g * 2 * (x - y)).sum_to_size(x.shape), None, None  # the mean's 1/n is missing

        def fn(x, y, reduction):
            y = y.expand_as(x) if y.shape != x.shape else y
            return MSE.apply(x, y, reduction)

        return [Impl("mean_squared_error", "torch.nn.functional.mse_loss", fn, name="mse_loss",
                     note="custom autograd.Function")]


class MAESignAtZero(ZooAdapter):
    """A custom MAE backward with sign(x - y) taken as +1 at x = y (the subgradient convention is 0)."""

    name = "zoo_mae_sign_at_zero"
    mistake = "hand-written MAE backward uses where(d >= 0, 1, -1): +1 instead of 0 at x = y"
    loss = "mean_absolute_error"

    def broken(self):
        import torch
        import torch.nn.functional as F

        class MAE(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x, y, reduction):
                ctx.save_for_backward(x, y)
                ctx.reduction = reduction
                return F.l1_loss(x, y, reduction=reduction)

            @staticmethod
            def backward(ctx, g):
                x, y = ctx.saved_tensors
                d = x - y
                sign = torch.where(d >= 0, 1.0, -1.0).to(x.dtype)
                scale = 1.0 / d.numel() if ctx.reduction == "mean" else 1.0
                return (g * sign * scale).sum_to_size(x.shape), None, None

        def fn(x, y, reduction):
            y = y.expand_as(x) if y.shape != x.shape else y
            return MAE.apply(x, y, reduction)

        return [Impl("mean_absolute_error", "torch.nn.functional.l1_loss", fn, name="l1_loss[sign_at_zero]",
                     note="custom autograd.Function")]


class SmoothingIgnoredTargets(ZooAdapter):
    """Label smoothing applied to every row, ignored ones included (their one-hot row is all zero)."""

    name = "zoo_smoothing_ignored"
    mistake = "ignored targets still receive the eps/C smoothing mass"
    loss = SPARSE

    def broken(self):
        import torch.nn.functional as F

        def fn(x, y, reduction, label_smoothing=0.0, weight=None, ignore_index=None, axis=-1):
            ignore = -100 if ignore_index is None else int(ignore_index)
            kept = y != ignore
            c = x.shape[-1]
            w = x.new_ones(c) if weight is None else weight
            onehot = F.one_hot(y.clamp(min=0) * kept, c).to(x.dtype) * kept.unsqueeze(-1)
            t = (1 - label_smoothing) * onehot + label_smoothing / c  # ignored rows smoothed too
            per_sample = -(w * t * F.log_softmax(x, dim=-1)).sum(-1)
            if reduction == "mean":
                return per_sample.sum() / (w[y.clamp(min=0)] * kept).sum()
            return _reduce(per_sample, reduction)

        return [Impl(SPARSE, "torch.nn.functional.log_softmax", fn, name="cross_entropy", composed=True,
                     params=("label_smoothing", "weight", "ignore_index", "axis"), restrict=_rows)]


class WrapNegativeLabels(ZooAdapter):
    """Labels taken modulo C so that the call never raises: a negative label silently reads as a class."""

    name = "zoo_wrap_negative_labels"
    mistake = "labels wrapped with label % C (Python-style indexing): negative labels silently become classes"
    loss = SPARSE

    def broken(self):
        import torch.nn.functional as F

        def fn(x, y, reduction, axis=-1):
            return F.cross_entropy(x, y % x.shape[1], reduction=reduction)

        return [Impl(SPARSE, "torch.nn.functional.cross_entropy", fn, name="cross_entropy",
                     params=("axis",), restrict=_axis1)]


class ClampLabels(ZooAdapter):
    """A gather-based loss that clamps its indices into range, as XLA gathers do."""

    name = "zoo_clamp_labels"
    mistake = "labels clamped into [0, C - 1] before the gather: out-of-range labels silently read the edge class"
    loss = SPARSE

    def broken(self):
        import torch.nn.functional as F

        def fn(x, y, reduction, axis=-1):
            picked = F.log_softmax(x, dim=1).gather(1, y.clamp(0, x.shape[1] - 1).unsqueeze(1)).squeeze(1)
            return _reduce(-picked, reduction)

        return [Impl(SPARSE, "torch.nn.functional.log_softmax", fn, name="cross_entropy", composed=True,
                     restrict=_rows)]


class TruncateFloatLabels(ZooAdapter):
    """Float labels cast to integers for the caller's convenience: 1.5 silently becomes class 1."""

    name = "zoo_truncate_float_labels"
    mistake = "labels cast with .long(): float labels (1.5, NaN) are silently truncated to a class"
    loss = SPARSE

    def broken(self):
        import torch.nn.functional as F

        def fn(x, y, reduction, axis=-1):
            return F.cross_entropy(x, y.long().clamp(min=0), reduction=reduction)

        return [Impl(SPARSE, "torch.nn.functional.cross_entropy", fn, name="cross_entropy",
                     params=("axis",), restrict=_axis1)]


class ClampProbabilities(ZooAdapter):
    """Probabilities clamped into [0, 1] before binary_cross_entropy, so the call never raises."""

    name = "zoo_clamp_probabilities"
    mistake = "probabilities clamped into [0, 1] before F.binary_cross_entropy: p = 1.5 silently reads as 1"
    loss = "binary_cross_entropy"

    def broken(self):
        import torch.nn.functional as F

        def fn(p, z, reduction):
            return F.binary_cross_entropy(p.clamp(0, 1), z.expand_as(p), reduction=reduction)

        return [Impl("binary_cross_entropy", "torch.nn.functional.binary_cross_entropy", fn,
                     name="binary_cross_entropy", variant="log_clamp_-100")]


class FocalAlphaSwapped(ZooAdapter):
    """The focal loss's alpha weight put on the negatives: (1 - alpha) z + alpha (1 - z)."""

    name = "zoo_focal_alpha_swapped"
    mistake = "sigmoid focal loss weights positives by 1 - alpha and negatives by alpha"
    loss = "sigmoid_focal_loss"
    budget = 8

    def broken(self):
        import torch
        import torch.nn.functional as F

        def fn(x, z, reduction, alpha=None, gamma=2.0):
            ce = F.binary_cross_entropy_with_logits(x, z, reduction="none")
            p = torch.sigmoid(x)
            loss = ce * (1 - (p * z + (1 - p) * (1 - z))) ** gamma
            if alpha is not None:
                loss = ((1 - alpha) * z + alpha * (1 - z)) * loss
            return _reduce(loss, reduction)

        return [Impl("sigmoid_focal_loss", "torch.nn.functional.binary_cross_entropy_with_logits", fn,
                     name="sigmoid_focal_loss", params=("alpha", "gamma"), composed=True)]


class CosineSquaredNorms(ZooAdapter):
    """The dot product divided by the squared norms instead of the norms."""

    name = "zoo_cosine_squared_norms"
    mistake = "cosine similarity as x . y / (|x|^2 |y|^2): the square roots forgotten"
    loss = "cosine_similarity"

    def broken(self):
        def fn(x, y, reduction, axis=-1):
            return (x * y).sum(-1) / ((x * x).sum(-1) * (y * y).sum(-1))

        return [Impl("cosine_similarity", "torch.sum", fn, name="cosine_similarity", reductions=("none",),
                     composed=True)]


class HuberAsSmoothL1(ZooAdapter):
    """Huber computed with smooth_l1_loss(beta=delta): the factor delta between the two is forgotten."""

    name = "zoo_huber_as_smooth_l1"
    mistake = "huber_loss(delta) computed as smooth_l1_loss(beta=delta), which is huber / delta"
    loss = "huber"

    def broken(self):
        import torch.nn.functional as F

        def fn(x, y, reduction, delta=1.0):
            return F.smooth_l1_loss(x, y, reduction=reduction, beta=delta)

        return [Impl("huber", "torch.nn.functional.smooth_l1_loss", fn, name="huber_loss", params=("delta",))]


class SmoothL1AsHuber(ZooAdapter):
    """Smooth L1 computed with huber_loss(delta=beta): the division by beta is missing."""

    name = "zoo_smooth_l1_as_huber"
    mistake = "smooth_l1_loss(beta) computed as huber_loss(delta=beta), which is beta times too large"
    loss = "smooth_l1"

    def broken(self):
        import torch.nn.functional as F

        def fn(x, y, reduction, beta=1.0):
            return F.huber_loss(x, y, reduction=reduction, delta=max(beta, 1e-12))

        return [Impl("smooth_l1", "torch.nn.functional.huber_loss", fn, name="smooth_l1_loss", params=("beta",))]


class NaiveLogCosh(ZooAdapter):
    """log(cosh(d)) as written: cosh overflows for |d| > 89 in float32 (and 11 in float16)."""

    name = "zoo_naive_log_cosh"
    mistake = "log_cosh as torch.log(torch.cosh(d)): cosh overflows, the loss becomes inf"
    loss = "log_cosh"

    def broken(self):
        import torch

        def fn(x, y, reduction):
            return _reduce(torch.log(torch.cosh(x - y)), reduction)

        return [Impl("log_cosh", "torch.cosh", fn, name="log_cosh", composed=True)]


class HingeConvertsSigns(ZooAdapter):
    """Targets converted from {0, 1} to {-1, 1} although they already are -1/1."""

    name = "zoo_hinge_converts_signs"
    mistake = "hinge maps targets with 2 y - 1 unconditionally: a -1 target becomes -3"
    loss = "hinge"

    def broken(self):
        def fn(x, y, reduction):
            return _reduce((1 - (2 * y - 1) * x).clamp(min=0), reduction)

        return [Impl("hinge", "torch.clamp", fn, name="hinge", composed=True)]


class SquaredHingeNoClamp(ZooAdapter):
    """The square taken of the margin itself: samples beyond the margin are penalised too."""

    name = "zoo_squared_hinge_no_clamp"
    mistake = "squared hinge as (1 - y x)^2, the max(0, .) forgotten"
    loss = "squared_hinge"

    def broken(self):
        def fn(x, y, reduction):
            return _reduce((1 - y * x) ** 2, reduction)

        return [Impl("squared_hinge", "torch.pow", fn, name="squared_hinge", composed=True)]


class PoissonStirlingAtOne(ZooAdapter):
    """The Stirling term of full=True added where y >= 1 instead of y > 1."""

    name = "zoo_poisson_stirling_at_one"
    mistake = "poisson_nll_loss(full=True) adds the Stirling term at y = 1 too (-0.081 per such element)"
    loss = "poisson_nll"
    budget = 8

    def broken(self):
        import math

        import torch
        import torch.nn.functional as F

        def fn(x, y, reduction, log_input=True, full=False):
            loss = F.poisson_nll_loss(x, y, log_input=log_input, full=False, reduction="none")
            if full:
                ys = torch.where(y >= 1, y, torch.ones_like(y))
                stirling = ys * torch.log(ys) - ys + 0.5 * torch.log(2 * math.pi * ys)
                loss = loss + torch.where(y >= 1, stirling, torch.zeros_like(y))
            return _reduce(loss, reduction)

        return [Impl("poisson_nll", "torch.nn.functional.poisson_nll_loss", fn, name="poisson_nll_loss",
                     params=("log_input", "full"), variant="poisson_log_offset_1e-8", composed=True)]


class CtcSkipOverRepeats(ZooAdapter):
    """CTC by a forward recursion whose skip transition forgets the repeat rule: it jumps from one label to the
    next also when both are equal, so (a, a) also reads as a single a and needs no blank between."""

    name = "zoo_ctc_skip_over_repeats"
    mistake = "CTC recursion allows skipping the blank between two equal labels (a a collapses to a)"
    loss = "ctc"

    def broken(self):
        import torch

        def fn(x, y, reduction):
            lp = torch.log_softmax(x, dim=-1)
            dead = -1e4 if x.dtype == torch.float16 else -1e30  # log 0 kept finite: -inf gives NaN gradients
            per = []
            for i in range(x.shape[0]):
                ext = [0]
                for k in y[i].tolist():
                    ext += [k, 0]
                skip = torch.tensor([s >= 2 and ext[s] != 0 for s in range(len(ext))])  # no ext[s] != ext[s - 2]
                emit = lp[i][:, ext]
                pad = torch.full((len(ext),), dead, dtype=lp.dtype)
                alpha = torch.where(torch.arange(len(ext)) < 2, emit[0], pad)
                for t in range(1, x.shape[1]):
                    one = torch.cat([pad[:1], alpha[:-1]])
                    two = torch.where(skip, torch.cat([pad[:2], alpha[:-2]])[: len(ext)], pad)
                    alpha = torch.logsumexp(torch.stack([alpha, one, two]), dim=0) + emit[t]
                per.append(-torch.logsumexp(alpha[-2:], dim=0))
            per = torch.stack(per) if per else x.sum((1, 2))
            return per if reduction == "none" else per.sum() if reduction == "sum" else per.mean()

        return [Impl("ctc", "torch.logsumexp", fn, name="ctc_loss", composed=True)]


MEMBERS: tuple[type[ZooAdapter], ...] = tuple(
    v for v in list(globals().values())
    if isinstance(v, type) and issubclass(v, ZooAdapter) and v is not ZooAdapter
)
