"""Mechanisms of known deviations: input conditions and models (see ``lossconf.known``).

A known deviation names its mechanism, never random case ids, so it explains the same behaviour
under every seed:

- an *input condition* is computed from the case's inputs in the dtype under test (``INPUTS``),
  e.g. ``difference_above_sqrt_max``: some |x - y| squares past the dtype's largest number;
- a *model* is a computation that reproduces the deviating result (``MODELS``), e.g. ``clip_64``:
  the reference on logits clipped to max - 64. A check is ``known`` through a model only when the
  framework's result agrees with the model within the error-model bound, so a result that deviates
  in some other way stays a ``fail``.

Models are evaluated only for checks that did not pass. Each returns the reference's
(value, grad, scale_value, scale_grad) for the modelled computation; models go through the
reference's public ``evaluate`` on transformed inputs, or are a short float64 formula.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial

import numpy as np

from lossconf.errormodel import finfo
from lossconf.reference import evaluate, get_loss, numpy_dtype
from lossconf.reference.probability import clip_bounds

Inputs = tuple[np.ndarray, np.ndarray | None, dict]  # (first, second, params) cast to the dtype under test

CLIP = 64.0  # Paddle's softmax kThreshold: x - max(x) is clipped at -64
BCE_EPS = 1e-12  # the floor of p (1 - p) in torch's and Paddle's binary_cross_entropy backward


def _f64(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else np.asarray(a).astype(np.float64)


def _class_axis(params: dict) -> int:
    return int(params.get("axis", -1))


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


# -- input conditions ------------------------------------------------------------------------------

def _difference_above_sqrt_max(first, second, params, dtype, loss="") -> bool:
    if second is None or not np.issubdtype(np.asarray(second).dtype, np.floating):
        return False
    with np.errstate(invalid="ignore", over="ignore"):  # the difference as computed in the dtype
        d = _f64(first) - _f64(second)  # shapes that do not pair: ValueError, so it does not hold
        d = np.abs(d[np.isfinite(d)].astype(numpy_dtype(dtype)).astype(np.float64))
    return bool(np.any(d > np.sqrt(float(finfo(dtype).max))))


def _difference_exactly_zero(first, second, params, dtype, loss="") -> bool:
    if second is None or np.issubdtype(np.asarray(second).dtype, np.integer):  # bfloat16 is no np.floating
        return False
    return bool(np.any(_f64(first) == _f64(second)))  # shapes that do not pair: ValueError, so it does not hold


def _label_inexact_in_dtype(first, second, params, dtype, loss="") -> bool:
    if second is None or not np.issubdtype(np.asarray(second).dtype, np.integer):
        return False
    labels = np.asarray(second)
    labels = labels[labels >= 0]
    return bool(np.any(labels.astype(numpy_dtype(dtype)).astype(np.float64) != labels))


def _all_labels_ignored(first, second, params, dtype, loss="") -> bool:
    ignore = params.get("ignore_index")
    if ignore is None or second is None or np.size(second) == 0:
        return False
    return bool(np.all(np.asarray(second) == ignore))


def _label_smoothing(first, second, params, dtype, loss="") -> bool:
    return float(params.get("label_smoothing", 0.0) or 0.0) > 0


def _logits(first, params: dict, loss: str) -> np.ndarray:
    """The class logits in float64: the first input, or h W^T + b for the fused linear cross entropy."""
    if loss != "linear_cross_entropy":
        return _f64(first)
    z = _f64(first) @ _f64(params["linear_weight"]).T
    return z if params.get("linear_bias") is None else z + _f64(params["linear_bias"])


def _smoothing_sum_overflows(first, second, params, dtype, loss="") -> bool:
    """torch forms the smoothing term -sum_c w_c log_softmax(x)_c per sample, and for 'sum'/'mean'
    sums it over the batch, in the dtype, before scaling by eps / C (x = h W^T + b for linear CE)."""
    if not _label_smoothing(first, second, params, dtype):
        return False
    axis = _class_axis(params)
    with np.errstate(all="ignore"):
        terms = -_log_softmax(_logits(first, params, loss), axis)
        if isinstance(params.get("weight"), np.ndarray):
            shape = [1] * terms.ndim
            shape[axis] = -1
            terms = terms * _f64(params["weight"]).reshape(shape)
        total = np.sum(terms, axis=axis)
        if second is not None and "ignore_index" in params:
            total = np.where(np.asarray(second) == params["ignore_index"], 0.0, total)
        if params.get("reduction") in ("sum", "mean"):
            total = np.sum(total)
    return bool(np.any(np.abs(total[np.isfinite(total)]) > float(finfo(dtype).max)))


def _batch_sum_overflows(first, second, params, dtype, loss="") -> bool:
    """'mean' computed as a sum in the dtype, then divided: the per-sample values sum past its max."""
    if not loss or params.get("reduction") != "mean" or np.size(first) == 0:
        return False
    values = evaluate(loss, first, second, scales=False, **{**params, "reduction": "none"}).value
    total = np.sum(np.asarray(values, dtype=np.float64))
    return bool(np.isfinite(total) and abs(total) > float(finfo(dtype).max))


def _softmax_sum_at_least_256(first, second, params, dtype, loss="") -> bool:
    x = _f64(first)
    if x.size == 0:
        return False
    axis = _class_axis(params)
    with np.errstate(all="ignore"):
        total = np.sum(np.exp(x - np.max(x, axis=axis, keepdims=True)), axis=axis)
    return bool(np.any(total >= 256))


def _ctc_no_alignment(first, second, params, dtype, loss="") -> bool:
    """Some sequence's target needs more frames (one per label, a blank between repeats) than its input has."""
    if loss != "ctc":
        return False
    from lossconf.reference.sequence import needed_frames

    n, t = np.shape(first)[:2]
    t_len = np.full(n, t) if params.get("input_lengths") is None else np.asarray(params["input_lengths"])
    l_len = np.full(n, np.shape(second)[1]) if params.get("target_lengths") is None else \
        np.asarray(params["target_lengths"])
    return any(needed_frames(np.asarray(second)[i, : int(l_len[i])]) > int(t_len[i]) for i in range(n))


def _ctc_labels_width_zero(first, second, params, dtype, loss="") -> bool:
    """The label tensor has no columns (S = 0): every target is empty."""
    return loss == "ctc" and second is not None and np.ndim(second) == 2 and np.shape(second)[1] == 0


def _ctc_all_targets_empty(first, second, params, dtype, loss="") -> bool:
    """Every CTC target has length 0 (a width-0 label tensor, or target_lengths all 0)."""
    if loss != "ctc" or second is None or np.ndim(second) != 2:
        return False
    lengths = params.get("target_lengths")
    return np.shape(second)[1] == 0 or (lengths is not None and not np.any(np.asarray(lengths)))


def _ctc_mean_with_empty_target(first, second, params, dtype, loss="") -> bool:
    """reduction 'mean' and some CTC target has length 0 (a division by that length is 0/0 or x/0)."""
    if loss != "ctc" or params.get("reduction") != "mean" or second is None or np.ndim(second) != 2:
        return False
    lengths = params.get("target_lengths")
    return np.shape(second)[1] == 0 or (lengths is not None and not np.all(np.asarray(lengths)))


def _probability_zero_positive_target(first, second, params, dtype, loss="") -> bool:
    if second is None or np.shape(first) != np.shape(second):
        return False
    return bool(np.any((np.asarray(first) == 0) & (_f64(second) > 0)))


def _logit_exactly_zero(first, second, params, dtype, loss="") -> bool:
    return bool(np.any(np.asarray(first) == 0))


def _reduced(first, second, params, dtype, loss="") -> bool:
    return params.get("reduction") in ("sum", "mean")
def _first_has_zero_vector(first, second, params, dtype, loss="") -> bool:
    x = np.asarray(first)
    if x.ndim == 0 or x.size == 0:
        return False
    return bool(np.any(np.all(x == 0, axis=_class_axis(params))))


def _first_square_subnormal(first, second, params, dtype, loss="") -> bool:
    x = _f64(first)
    return bool(np.any((x != 0) & (x * x < float(finfo(dtype).smallest_normal))))


Condition = Callable[[np.ndarray, np.ndarray | None, dict, str, str], bool]
INPUTS: dict[str, tuple[str, Condition]] = {
    "difference_above_sqrt_max": (
        "some |x - y|, rounded to the dtype, exceeds the square root of the dtype's largest number (its square "
        "in the dtype overflows; float16: x - y rounding to 256 from 255.94 up)",
        _difference_above_sqrt_max),
    "difference_exactly_zero": (
        "some x equals its target y exactly in the dtype (where |x - y| has its kink)", _difference_exactly_zero),
    "label_inexact_in_dtype": (
        "some integer label is not exactly representable in the dtype under test (above 256 in bfloat16, "
        "2048 in float16)", _label_inexact_in_dtype),
    "label_smoothing": ("label smoothing is on (epsilon > 0)", _label_smoothing),
    "all_labels_ignored": ("every label equals ignore_index (a fully padded batch)", _all_labels_ignored),
    "smoothing_sum_overflows": (
        "label smoothing is on and the smoothing term, -log_softmax(x) summed over classes (times the class "
        "weights) and, for 'sum'/'mean', over the batch, exceeds the dtype's largest number (x = h W^T + b for "
        "the linear cross entropy)",
        _smoothing_sum_overflows),
    "batch_sum_overflows": (
        "reduction 'mean' and the per-sample losses sum past the dtype's largest number (a mean formed as "
        "sum / n in the dtype overflows)", _batch_sum_overflows),
    "softmax_sum_at_least_256": (
        "some row's sum(exp(x - max(x))) is at least 256 (its square overflows float16)", _softmax_sum_at_least_256),
    "probability_zero_positive_target": (
        "some probability is exactly 0 where its target is positive", _probability_zero_positive_target),
    "logit_exactly_zero": ("some logit is exactly 0 in the dtype (where |x| and max(x, 0) have a kink)",
                           _logit_exactly_zero),
    "reduced": ("reduction 'sum' or 'mean': the result is a sum over every element", _reduced),
    "first_has_zero_vector": (
        "some vector of the first input along the class axis is all zero (its norm is 0)", _first_has_zero_vector),
    "first_square_subnormal": (
        "some non-zero element of the first input has a square below the dtype's smallest normal number "
        "(|x| < 7.8e-3 in float16): x * x loses relative precision as a subnormal", _first_square_subnormal),
    "ctc_no_alignment": (
        "some CTC target needs more frames (one per label, a blank between repeated labels) than its input length: "
        "no alignment, p = 0", _ctc_no_alignment),
    "ctc_labels_width_zero": ("the CTC label tensor has zero columns (S = 0: every target empty)",
                              _ctc_labels_width_zero),
    "ctc_all_targets_empty": ("every CTC target has length 0 (a label tensor of width 0, or target lengths all 0)",
                              _ctc_all_targets_empty),
    "ctc_mean_with_empty_target": ("reduction 'mean' and some CTC target has length 0",
                                   _ctc_mean_with_empty_target),
}


def input_facts(inputs: Inputs, dtype: str, loss: str = "", only: Iterable[str] | None = None) -> set[str]:
    """The names of the input conditions that hold for the cast inputs of one case of ``loss`` (of those
    named in ``only``, when given: some conditions evaluate the reference)."""
    first, second, params = inputs
    names = INPUTS if only is None else [n for n in INPUTS if n in set(only)]
    return {name for name in names if _holds(INPUTS[name][1], first, second, params, dtype, loss)}


def _holds(holds, *args) -> bool:
    """A condition that cannot be evaluated on this case (a loss without reduction 'none', shapes that
    do not pair) does not hold for it."""
    try:
        return bool(holds(*args))
    except (ValueError, TypeError):
        return False


# -- models ----------------------------------------------------------------------------------------

def _reference(loss: str, first, second, params: dict, variant: str | None) -> tuple:
    ref = evaluate(loss, first, second, variant=variant, **params)
    return ref.value, ref.grad, ref.scale_value, ref.scale_grad


def _clipped_64(first: np.ndarray, params: dict) -> np.ndarray:
    """Logits clipped to max(x) - 64 along the class axis (-inf becomes max - 64), in float64."""
    x = _f64(first)
    if x.size:
        with np.errstate(invalid="ignore"):
            x = np.maximum(x, np.max(x, axis=_class_axis(params), keepdims=True) - CLIP)
    return x


def _clip_64(loss, inputs: Inputs, dtype, variant) -> tuple:
    """The reference on logits clipped to max(x) - 64 along the class axis (-inf becomes max - 64)."""
    first, second, params = inputs
    return _reference(loss, _clipped_64(first, params), second, params, variant)


def _clip_64_mean_over_all_samples(loss, inputs: Inputs, dtype, variant) -> tuple:
    """Both Paddle mechanisms at once: logits clipped at max(x) - 64, and 'mean' dividing by every sample."""
    first, second, params = inputs
    return _mean_over_all_samples(loss, (_clipped_64(first, params), second, params), dtype, variant)


def _class_sum_in_dtype(loss, inputs: Inputs, dtype, variant) -> tuple:
    """Soft-label CE -sum_c t_c log p_c as Paddle's CPU kernel forms it: p the softmax of x - max(x) clipped at
    -64 (or the given probabilities), p, log p and t log p each rounded to the dtype, the class sum
    accumulated in class order in the dtype (log 0 read as -1e20); value only, gradient and scales clip_64's."""
    first, second, params = inputs
    probs = loss == "categorical_cross_entropy"
    value, grad, s_value, s_grad = (_reference(loss, first, second, params, variant) if probs
                                    else _clip_64(loss, inputs, dtype, variant))
    dt, axis = numpy_dtype(dtype), _class_axis(params)
    x = np.moveaxis(_f64(first), axis, -1)
    if not x.size:
        return value, grad, s_value, s_grad
    if probs:
        p = x
    else:
        e = np.exp(np.maximum(x - x.max(axis=-1, keepdims=True), -CLIP))
        p = e / e.sum(axis=-1, keepdims=True)
    if loss == "sparse_softmax_cross_entropy":  # label smoothing on one-hot labels, the class axis last
        t = np.eye(x.shape[-1])[np.asarray(second)]
    else:
        t = np.moveaxis(_f64(second), axis, -1)
    eps = float(params.get("label_smoothing", 0.0) or 0.0)
    t = ((1 - eps) * t + eps / x.shape[-1] if eps else t).astype(dt)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p = np.log(p.astype(dt)).astype(dt)
        terms = t * np.where(np.isneginf(log_p), np.asarray(-1e20).astype(dt), log_p)
    rows = -np.cumsum(terms, axis=-1, dtype=dt)[..., -1].astype(np.float64)  # in class order, in the dtype
    reduction = params.get("reduction", "none")
    value = rows if reduction == "none" else np.sum(rows) / (rows.size if reduction == "mean" else 1)
    return np.asarray(value), grad, s_value, s_grad


def _warpctc_probability_floor(loss, inputs: Inputs, dtype, variant) -> tuple:
    """CTC with every class probability floored at the smallest normal number of the dtype (Paddle's warpctc):
    the reference on log-probabilities max(log_softmax(x), log(tiny)) taken as logits (they renormalise to
    within tiny)."""
    first, second, params = inputs
    x = _f64(first)
    if x.size:
        with np.errstate(invalid="ignore"):
            x = np.maximum(_log_softmax(x, -1), np.log(float(finfo(dtype).smallest_normal)))
    return _reference(loss, x, second, params, variant)


TF_LOG_ZERO = float(np.float32(np.log(1e-307)))  # tf ctc_state_log_probs: log(0) stood in for, -706.9


def _tf_ctc_states(labels: np.ndarray, blank: int, c: int) -> tuple:
    """TensorFlow's dense CTC state machine for one padded label row of width S (ctc_ops._ctc_state_trans):
    label states 0..S (0: nothing emitted yet), blank states S+1..2S+1; returns the log transition counts
    [to, from] and per state the class it emits (-1: none) and the class its posterior goes to (-1: none)."""
    s = len(labels)
    new = np.where(labels < blank, labels + 1, labels)  # TF moves the blank to class 0
    old = np.where(new == 0, blank, np.where(new <= blank, new - 1, new))  # and back to the caller's classes
    emits = np.concatenate([[-1], old, np.full(s + 1, blank)])
    posterior = np.concatenate([[-1], np.where(new == 0, -1, old), np.full(s + 1, blank)])
    trans = np.eye(2 * (s + 1))  # path counts, added like TF's scatter_nd adds duplicate indices
    trans[1, 0] += 1  # start -> label 1; with S = 0 state 1 is blank 0, so that transition counts twice
    for j in range(s + 1):
        trans[s + 1 + j, j] += 1  # label j -> blank j
        if j < s:
            trans[j + 1, s + 1 + j] += 1  # blank j -> label j + 1
        if 2 <= j <= s and labels[j - 2] != labels[j - 1]:
            trans[j, j - 1] += 1  # label j - 1 -> label j unless repeated
    with np.errstate(divide="ignore"):
        return np.log(trans), emits, posterior


def _ctc_log_zero_floor(loss, inputs: Inputs, dtype, variant) -> tuple:
    """TensorFlow's dense CTC (ctc_ops.ctc_loss_and_grad, 'none' only): the states other than the start and the
    true final ones begin and end at log(1e-307) = -706.9 instead of -inf. The loss is -log of the paths from
    the start with end weights 1 (true final states) or 1e-307 (any other); the gradient is softmax minus the
    per-frame normalised posterior of a forward pass also started at 1e-307 in every state; scales the
    reference's."""
    first, second, params = inputs
    ref_value, ref_grad, s_value, s_grad = _reference(loss, first, second, params, variant)
    if params.get("reduction", "none") != "none" or not np.size(first):
        return ref_value, ref_grad, s_value, s_grad
    x, labels = _f64(first), np.asarray(second)
    n, t_max, c = x.shape
    blank = int(params.get("blank", 0)) % c
    t_len = np.full(n, t_max) if params.get("input_lengths") is None else np.asarray(params["input_lengths"])
    l_len = np.full(n, labels.shape[1]) if params.get("target_lengths") is None else \
        np.asarray(params["target_lengths"])
    value, grad = np.zeros(n), np.zeros_like(x)
    for i in range(n):
        ti, li = int(t_len[i]), int(l_len[i])
        trans, emits, posterior = _tf_ctc_states(labels[i], blank, c)
        states = len(emits)
        lp = _log_softmax(x[i, :ti], -1)
        obs = np.where(emits >= 0, lp[:, np.maximum(emits, 0)], -np.inf)  # [T_i, states]
        start, final = np.full(states, TF_LOG_ZERO), np.full(states, TF_LOG_ZERO)
        start[0] = final[li] = final[labels.shape[1] + 1 + li] = 0.0
        alphas, a = [], start
        with np.errstate(invalid="ignore", divide="ignore"):
            for t in range(ti):
                a = _lse_rows(a[None, :] + trans) + obs[t]
                alphas.append(a)
            betas, b = [final], final
            for t in range(ti - 1, -1, -1):
                b = _lse_rows(trans.T + (obs[t] + b)[None, :])
                betas.append(b)
            betas = betas[::-1]  # betas[t]: frames t.. from each state before frame t
            value[i] = -betas[0][0]
            for t in range(ti):
                fb = alphas[t] + betas[t + 1]
                post = np.exp(fb - _lse_rows(fb[None, :])[0])
                gamma = np.zeros(c)
                np.add.at(gamma, posterior[posterior >= 0], post[posterior >= 0])
                grad[i, t] = np.exp(lp[t]) - gamma
    # the posterior mass the floor adds went through exponents up to |log 1e-307| + the loss: u times that
    moved = np.abs(np.where(np.isfinite(ref_grad), grad - ref_grad, grad))
    run = np.asarray(s_value, dtype=np.float64).reshape(n, 1, 1) + abs(TF_LOG_ZERO)
    s_grad = np.asarray(s_grad, dtype=np.float64) + moved * (1 + 2 * np.where(np.isfinite(run), run, 0.0))
    return value, grad, s_value, s_grad


def _lse_rows(a: np.ndarray) -> np.ndarray:
    """log(sum(exp)) along the last axis; a row of -inf gives -inf."""
    m = np.max(a, axis=-1)
    safe = np.where(np.isfinite(m), m, 0.0)
    return safe + np.log(np.sum(np.exp(a - safe[..., None]), axis=-1))


def _bce_backward_eps(loss, inputs: Inputs, dtype, variant, eps: float = BCE_EPS) -> tuple:
    """Gradient (p - z) / max(p (1 - p), eps), eps = 1e-12 in the dtype (0 in float16); value as declared."""
    first, second, params = inputs
    value, grad, s_value, s_grad = _reference(loss, first, second, params, variant)
    p, z = _f64(first), _f64(second)
    eps = float(np.asarray(eps).astype(numpy_dtype(dtype)))
    with np.errstate(all="ignore"):
        g = (p - z) / np.maximum(p * (1 - p), eps)
        if isinstance(params.get("weight"), np.ndarray):
            g = g * _f64(params["weight"])
        if params.get("reduction") == "mean":
            g = g / max(p.size, 1)
    return value, g.astype(grad.dtype), s_value, np.where(np.isfinite(g), np.abs(g), s_grad)


def _bce_backward_eps_float32(loss, inputs: Inputs, dtype, variant) -> tuple:
    """As ``_bce_backward_eps`` with the 1e-12 a float32 constant first (torch's C++ kernel)."""
    return _bce_backward_eps(loss, inputs, dtype, variant, eps=float(np.float32(BCE_EPS)))


# -- torch autograd and Paddle warpctc in the dtype (seed-sweep triage) -----------------------------

def _ce_upstream(loss: str, second, params: dict, x: np.ndarray) -> np.ndarray | None:
    """w_c t'_c times the reduction's factor per sample, the class axis last: minus the gradient torch's
    cross_entropy hands log_softmax's backward (t' the smoothed target; None where 'mean' has no weight)."""
    c = x.shape[-1]
    eps = float(params.get("label_smoothing", 0.0) or 0.0)
    w = np.ones(c) if params.get("weight") is None else _f64(params["weight"])
    if loss == "sparse_softmax_cross_entropy":
        y = np.asarray(second)
        kept = np.ones(y.shape, bool) if params.get("ignore_index") is None else y != params["ignore_index"]
        t = np.eye(c)[np.where(kept, y, 0)] * (1 - eps) + eps / c
        t = t * kept[..., None]
        total = np.sum(np.where(kept, w[np.where(kept, y, 0)], 0.0))  # torch's 'mean' denominator
    else:
        t = (1 - eps) * np.moveaxis(_f64(second), _class_axis(params), -1) + eps / c
        total = float(np.prod(x.shape[:-1]))
    if params.get("reduction") == "mean":
        return None if total == 0 else w * t / total
    return w * t


def _log_softmax_backward_class_sum_in_order(loss, inputs: Inputs, dtype, variant) -> tuple:
    """Cross entropy's gradient as torch's autograd forms it when the classes are not the last axis (> 2-D input):
    log_softmax's backward g - softmax(x) sum_c g_c with g = -w t' (per sample factor of the reduction), the class
    sum accumulated in class order in the dtype (_vec_log_softmax_backward); value and scales the reference's."""
    first, second, params = inputs
    value, grad, s_value, s_grad = _reference(loss, first, second, params, variant)
    axis = _class_axis(params) % max(np.ndim(first), 1)
    if np.ndim(first) < 3 or axis == np.ndim(first) - 1 or not np.size(first):  # last axis: another kernel
        return value, grad, s_value, s_grad
    dt = numpy_dtype(dtype)
    x = np.moveaxis(_f64(first), axis, -1)
    upstream = _ce_upstream(loss, second, params, x)
    if upstream is None:
        return value, grad, s_value, s_grad
    g = (-upstream).astype(dt)
    total = np.cumsum(g, axis=-1, dtype=dt)[..., -1:].astype(np.float64)  # in class order, in the dtype
    with np.errstate(invalid="ignore", over="ignore"):
        p = np.exp(_log_softmax(x, -1))
        model = g.astype(np.float64) - p * total
    return value, np.moveaxis(model, -1, axis), s_value, s_grad


def _cosine_backward_in_dtype(loss, inputs: Inputs, dtype, variant) -> tuple:
    """The gradient of torch's cosine_similarity, sum((x / n_x) (y / n_y)) with n = max(|v|, eps), as its autograd
    forms it op by op in the dtype: b / n_x + (sum_j -b_j ((x_j / n_x) / n_x)) (x / |x|), b = y / n_y, each
    step rounded (subnormal where 1 / |x| is below the smallest normal number); value and scales the reference's."""
    first, second, params = inputs
    value, grad, s_value, s_grad = _reference(loss, first, second, params, variant)
    dt, axis = numpy_dtype(dtype), _class_axis(params)
    if not np.size(first) or np.shape(first) != np.shape(second):
        return value, grad, s_value, s_grad

    def fl(a):
        return np.asarray(a, dtype=np.float64).astype(dt).astype(np.float64)

    x, y = _f64(first), _f64(second)
    eps = fl(1e-8)
    with np.errstate(all="ignore"):
        norm_x = fl(np.sqrt(np.sum(x * x, axis=axis, keepdims=True)))  # linalg_vector_norm accumulates wider
        norm_y = fl(np.sqrt(np.sum(y * y, axis=axis, keepdims=True)))
        nx, ny = np.maximum(norm_x, eps), np.maximum(norm_y, eps)
        b = fl(y / ny)
        direct = fl(b / nx)  # DivBackward: grad / other
        grad_norm = fl(np.sum(fl(-b * fl(fl(x / nx) / nx)), axis=axis, keepdims=True))  # -grad (self / other) / other
        model = fl(direct + fl(grad_norm * np.where(norm_x == 0, 0.0, fl(x / norm_x))))  # norm backward, p = 2
    return value, model, s_value, s_grad


def _log_plus(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """warp-ctc's ctc_helper::log_plus in the arrays' dtype: log1p(exp(-|a - b|)) + max(a, b), -inf the identity."""
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.log1p(np.exp(-np.abs(a - b))) + np.maximum(a, b)
    return np.where(np.isneginf(a), b, np.where(np.isneginf(b), a, out))


def _shifted(a: np.ndarray, k: int) -> np.ndarray:
    """``a`` moved k places along its axis (back for k < 0), filled with -inf (False for a mask)."""
    fill = np.full(abs(k), False if a.dtype == bool else -np.inf, dtype=a.dtype)
    return np.concatenate([fill, a])[: len(a)] if k > 0 else np.concatenate([a, fill])[-k:]


def _ctc_zero_log_posterior(logp: np.ndarray, states: np.ndarray, classes: int) -> np.ndarray:
    """[T, C] mask of the frames and classes whose log posterior sum o = log sum_s alpha_s beta_s (each beta
    including its own frame's log p, as in warp-ctc) is exactly 0.0, alphas, betas and o formed in logp's dtype."""
    t_len, s_len = logp.shape
    neg = np.asarray(-np.inf, dtype=logp.dtype)
    skip = np.zeros(s_len, bool)  # s - 2 -> s: a label that is not a repeat of the one before
    skip[3::2] = states[3::2] != states[1:-2:2]
    alpha, beta = np.full(logp.shape, neg), np.full(logp.shape, neg)
    alpha[0, :2] = logp[0, :2]
    beta[-1, -2:] = logp[-1, -2:]
    for t in range(1, t_len):
        prev = alpha[t - 1]
        total = _log_plus(prev, _shifted(prev, 1))
        total = np.where(skip, _log_plus(total, _shifted(prev, 2)), total)
        alpha[t] = total + logp[t]
    for t in range(t_len - 2, -1, -1):
        nxt = beta[t + 1]
        total = _log_plus(nxt, _shifted(nxt, -1))
        total = np.where(_shifted(skip, -2), _log_plus(total, _shifted(nxt, -2)), total)
        beta[t] = total + logp[t]
    both = alpha + beta
    out = np.full((t_len, classes), neg)
    for s in range(s_len):  # warp-ctc's reduce-by-key, in state order
        out[:, states[s]] = _log_plus(out[:, states[s]], both[:, s])
    return out == 0


def _warpctc_zero_log_sentinel(loss, inputs: Inputs, dtype, variant) -> tuple:
    """Paddle's warpctc gradient (CpuCTC::compute_betas_and_grad): p - posterior as warpctc_probability_floor, but p
    itself at every frame and class whose log posterior sum o = log sum_s alpha_s beta_s, formed in the dtype, is
    exactly 0.0 (log 1: all the mass on one certain path), which warpctc takes for 'no path' like -inf."""
    from lossconf.reference.sequence import needed_frames

    first, second, params = inputs
    value, grad, s_value, s_grad = _warpctc_probability_floor(loss, inputs, dtype, variant)
    if not np.size(first):
        return value, grad, s_value, s_grad
    dt = numpy_dtype(dtype)
    x, labels = np.asarray(first).astype(dt), np.asarray(second)
    n, t_max, c = x.shape
    blank = int(params.get("blank", 0)) % c
    t_len = np.full(n, t_max) if params.get("input_lengths") is None else np.asarray(params["input_lengths"])
    l_len = np.full(n, labels.shape[1]) if params.get("target_lengths") is None else \
        np.asarray(params["target_lengths"])
    grad = np.array(grad, dtype=np.float64)
    with np.errstate(all="ignore"):
        e = np.exp(x - x.max(axis=-1, keepdims=True))  # warp-ctc's softmax: the sum in class order, floored
        probs = np.maximum(e / np.cumsum(e, axis=-1, dtype=dt)[..., -1:], finfo(dtype).smallest_normal).astype(dt)
    for i in range(n):
        ti, target = int(t_len[i]), labels[i, : int(l_len[i])]
        if ti == 0 or needed_frames(target) > ti:  # warp-ctc returns 0 and leaves the gradient 0
            continue
        states = np.full(2 * len(target) + 1, blank)
        states[1::2] = target
        with np.errstate(all="ignore"):
            sentinel = _ctc_zero_log_posterior(np.log(probs[i, :ti][:, states]), states, c)
        factor = 1 / (n * max(len(target), 1)) if params.get("reduction") == "mean" else 1.0
        grad[i, :ti] = np.where(sentinel, probs[i, :ti].astype(np.float64) * factor, grad[i, :ti])
    return value, grad, s_value, s_grad


def _mean_over_all_samples(loss, inputs: Inputs, dtype, variant) -> tuple:
    """reduction 'mean' as the sum over kept samples divided by every sample, ignored ones included."""
    first, second, params = inputs
    if params.get("reduction") != "mean":
        return _reference(loss, first, second, params, variant)
    value, grad, s_value, s_grad = _reference(loss, first, second, {**params, "reduction": "sum"}, variant)
    n = max(int(np.asarray(second).size), 1)
    return value / n, grad / n, s_value / n, s_grad / n


def _smoothing_over_last_axis(loss, inputs: Inputs, dtype, variant) -> tuple:
    """Label smoothing (1 - eps) t + eps / shape[-1] whatever the class axis, on the dense targets."""
    first, second, params = inputs
    eps = float(params.get("label_smoothing", 0.0) or 0.0)
    t = _f64(second)
    if eps > 0:
        t = (1 - eps) * t + eps / t.shape[-1]
    return _reference(loss, first, t, {**params, "label_smoothing": 0.0}, variant)


def _computed_in_float32(loss, inputs: Inputs, dtype, variant) -> tuple:
    """The reference on the inputs in float32 (its constants, e.g. an epsilon, rounded to float32 rather than
    to the dtype), value and gradient then rounded to the dtype (overflowing to inf)."""
    first, second, params = inputs

    def as32(a):
        floating = isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating)
        return a.astype(np.float64).astype(np.float32) if floating else a

    params = {k: as32(v) for k, v in params.items()}
    value, grad, s_value, s_grad = _reference(loss, as32(first), as32(second), params, variant)
    with np.errstate(over="ignore"):
        value, grad = (np.asarray(a).astype(numpy_dtype(dtype)).astype(np.float64) for a in (value, grad))
    return value, grad, s_value, s_grad


def _float32_arithmetic(loss, inputs: Inputs, dtype, variant) -> tuple:
    """The reference with the scales widened to float32's bound: a result computed (partly) in float32
    agrees with it, a wrong formula does not. kappa u S' = kappa u32 S + u32 |truth| >= the float32 bound."""
    first, second, params = inputs
    ref = evaluate(loss, first, second, variant=variant, **params)
    further = [ref.grads[q] for q in get_loss(loss).quantities[2:]]  # (gradient, scale) of linear_weight...
    scales = _widened_to_float32(dtype, (ref.scale_value, ref.value), (ref.scale_grad, ref.grad),
                                 *((s, g) for g, s in further))
    widened = (a for (g, _), s in zip(further, scales[2:], strict=True) for a in (g, s))
    return (ref.value, ref.grad, *scales[:2], *widened)


def _widened_to_float32(dtype: str, *scaled: tuple) -> tuple:
    """Each (scale, truth) pair's scale widened to float32's bound: (u32 (S + |truth|) + float32's subnormal
    spacing) / u, so that kappa u S' is at least float32's kappa (u32 S + subnormal) plus its rounding of |truth|."""
    u = float(finfo(dtype).eps / 2)
    u32, tiny32 = float(finfo("float32").eps / 2), float(finfo("float32").smallest_subnormal)
    with np.errstate(invalid="ignore"):
        return tuple((u32 * (np.asarray(s) + np.where(np.isfinite(t), np.abs(t), 0)) + tiny32) / u for s, t in scaled)


def _rounding(dtype) -> Callable[[np.ndarray], np.ndarray]:
    """fl_d: a float64 array rounded to ``dtype`` and back (overflowing to inf)."""
    dt = numpy_dtype(dtype)

    def fl(a):
        with np.errstate(over="ignore"):
            return np.asarray(a, dtype=np.float64).astype(dt).astype(np.float64)
    return fl


def _jax_clip_tie(p: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """jnp.clip(p, lo, hi)'s gradient: jnp.maximum/minimum whose JVP splits a tie (lax max_p/min_p's
    _balanced_eq): 1 inside, 1/2 where p equals a bound, 0 outside."""
    return np.where(p == lo, 0.5, p > lo) * np.where(p == hi, 0.5, p < hi)


def _keras_focal_factor(p: np.ndarray, z: np.ndarray, params: dict, fl) -> tuple:
    """Keras's focal terms in the dtype: q = 1 - (z p + (1 - z)(1 - p)) (cancels for p near 0 or 1), q^gamma,
    the class weight a_t (1 without apply_class_balancing) and gamma."""
    alpha, gamma = params.get("alpha"), float(params.get("gamma", 2.0))
    q = fl(1 - fl(fl(z * p) + fl(fl(1 - z) * fl(1 - p))))
    return q, fl(q**gamma), 1.0 if alpha is None else fl(alpha * z + (1 - alpha) * (1 - z)), gamma


def _with_sigmoid_rounding(s_value, p, z, q, gamma, ce, a_t, params: dict, dtype):
    """The reference's value scale plus the focal loss's sensitivity to a relative rounding of p (the sigmoid
    formed op by op, off by an ulp or two): a_t (q^gamma (z + (1 - z) p / (1 - p)) [p inside the clip bounds]
    + gamma q^(gamma - 1) p ce), large where 1 - p cancels; summed over the elements for 'sum'/'mean'."""
    lo, hi = clip_bounds(1e-7, numpy_dtype(dtype))
    with np.errstate(all="ignore"):
        d_ce = np.where((p >= lo) & (p <= hi), z + (1 - z) * p / (1 - p), 0.0)
        extra = np.abs(a_t * (q**gamma * d_ce + gamma * q ** (gamma - 1) * p * ce))
    extra = np.where(np.isfinite(extra), extra, 0.0)
    if params.get("reduction") in ("sum", "mean"):
        extra = np.sum(extra) / (max(extra.size, 1) if params["reduction"] == "mean" else 1)
    return np.asarray(s_value) + extra


def _keras_focal_on_jax(loss, inputs: Inputs, dtype, variant) -> tuple:
    """Keras's binary_focal_crossentropy(from_logits=True) as the jax backend computes it, each op in the dtype:
    p = 1 / (1 + exp(-x)) (lax.logistic has no HLO op: logistic_impl), pc = jnp.clip(p, fl(1e-7), fl(1 - 1e-7)),
    ce = -(z log pc + (1 - z) log(1 - pc)) unguarded (0 * log 0 = NaN), q = 1 - (z p + (1 - z)(1 - p)) (cancels
    for p near 0 or 1), a_t q^gamma ce; the gradient is jax.vjp's chain of the same ops (pow's JVP gamma
    q^(gamma - 1), log's g / x, a clip bound that p equals passes half, logistic's p (1 - p)); scales the
    reference's, the value's with the rounding of p (``_with_sigmoid_rounding``)."""
    first, second, params = inputs
    _, _, s_value, s_grad = _reference(loss, first, second, params, variant)
    fl = _rounding(dtype)
    x, z = _f64(first), _f64(second)
    lo, hi = clip_bounds(1e-7, numpy_dtype(dtype))
    with np.errstate(all="ignore"):
        p = fl(1 / fl(1 + fl(np.exp(-x))))
        pc = np.clip(p, lo, hi)
        log_p, log_q = fl(np.log(pc)), fl(np.log(fl(1 - pc)))
        ce = -fl(fl(z * log_p) + fl(fl(1 - z) * log_q))
        q, focal, a_t, gamma = _keras_focal_factor(p, z, params, fl)
        value = a_t * fl(focal * ce)
        n = max(x.size, 1) if params.get("reduction") == "mean" else 1
        g = a_t / n  # the upstream gradient of each element
        d_q = g * ce * (gamma * q ** (gamma - 1))
        d_ce = g * focal
        d_pc = -(d_ce * z) / pc + (d_ce * (1 - z)) / fl(1 - pc)
        d_p = -d_q * z + d_q * (1 - z) + d_pc * _jax_clip_tie(p, lo, hi)
        grad = d_p * (p * (1 - p))
    if params.get("reduction") in ("sum", "mean"):
        value = np.sum(value) / n
    return value, grad, _with_sigmoid_rounding(s_value, p, z, q, gamma, ce, a_t, params, dtype), s_grad


def _torch_sigmoid(x: np.ndarray, dtype) -> np.ndarray:
    """torch's CPU sigmoid: 1 / (1 + exp(-x)) op by op in the dtype, float32 for float16/bfloat16 (then rounded)."""
    fl, work = _rounding(dtype), _rounding(dtype if dtype == "float64" else "float32")
    with np.errstate(over="ignore"):
        return fl(work(1 / work(1 + work(np.exp(-x)))))


def _torch_clipped_bce(p: np.ndarray, z: np.ndarray, upstream, dtype) -> tuple:
    """Keras's binary_crossentropy on the torch backend: pc = torch.clip(p, fl(1e-7), fl(1 - 1e-7)), then
    F.binary_cross_entropy's CPU kernel (each log clamped at -100) and its backward
    g (pc - z) / max((1 - pc) pc, EPSILON) op by op in the dtype (EPSILON = 1e-12 as a float, then the dtype),
    passed where lo <= p <= hi (clamp's backward). (value, d value / dp) elementwise."""
    fl = _rounding(dtype)
    lo, hi = clip_bounds(1e-7, numpy_dtype(dtype))
    eps = fl(np.float32(BCE_EPS))
    with np.errstate(all="ignore"):
        pc = np.clip(p, lo, hi)
        log_p, log_q = (np.maximum(fl(np.log(pc)), -100.0), np.maximum(fl(np.log1p(-pc)), -100.0))
        value = fl(fl(fl(z - 1) * log_q) - fl(z * log_p))
        d_pc = fl(fl(upstream * fl(pc - z)) / np.maximum(fl(fl(1 - pc) * pc), eps))
    return value, np.where((p >= lo) & (p <= hi), d_pc, 0.0)


def _keras_upstream(params: dict, first: np.ndarray, dtype) -> float:
    """The gradient reaching each element of a Keras elementwise loss: 1, or fl(fl(1 / N) / C) for
    'sum_over_batch_size' (ops.divide_no_nan by N, then the mean over the last axis C)."""
    if params.get("reduction") != "mean" or not np.size(first):
        return 1.0
    fl = _rounding(dtype)
    c = np.shape(first)[-1] if np.ndim(first) else 1
    return float(fl(fl(1 / max(np.size(first) // c, 1)) / c))


def _keras_bce_on_torch(loss, inputs: Inputs, dtype, variant) -> tuple:
    """keras.losses.BinaryCrossentropy on probabilities, torch backend: ``_torch_clipped_bce`` (a probability that
    rounds to 1 beside its clip bound, float16/bfloat16, costs 100 (1 - z) instead of inf), averaged; scales the
    reference's."""
    first, second, params = inputs
    _, _, s_value, s_grad = _reference(loss, first, second, params, variant)
    p, z = _f64(first), _f64(second)
    value, grad = _torch_clipped_bce(p, z, _keras_upstream(params, p, dtype), dtype)
    if params.get("reduction") in ("sum", "mean"):
        value = np.sum(value) / (max(value.size, 1) if params["reduction"] == "mean" else 1)
    return value, grad, s_value, s_grad


def _keras_focal_on_torch(loss, inputs: Inputs, dtype, variant) -> tuple:
    """Keras's binary_focal_crossentropy(from_logits=True) on the torch backend: p = torch.sigmoid(x)
    (``_torch_sigmoid``), ce = ``_torch_clipped_bce``, q = 1 - (z p + (1 - z)(1 - p)) in the dtype (cancels for p
    near 0 or 1), a_t q^gamma ce; the gradient autograd's: pow's backward gamma q^(gamma - 1) (0 for gamma = 0),
    sigmoid's p (1 - p); scales the reference's, the value's with the rounding of p (``_with_sigmoid_rounding``)."""
    first, second, params = inputs
    _, _, s_value, s_grad = _reference(loss, first, second, params, variant)
    fl = _rounding(dtype)
    x, z = _f64(first), _f64(second)
    g = _keras_upstream(params, x, dtype)
    with np.errstate(all="ignore"):
        p = _torch_sigmoid(x, dtype)
        q, focal, a_t, gamma = _keras_focal_factor(p, z, params, fl)
        ce, d_ce = _torch_clipped_bce(p, z, fl(fl(g * a_t) * focal), dtype)
        value = fl(a_t * fl(focal * ce))
        d_q = 0.0 if gamma == 0 else g * a_t * ce * gamma * q ** (gamma - 1)
        grad = fl((d_q * (1 - 2 * z) + d_ce) * (p * (1 - p)))
    if params.get("reduction") in ("sum", "mean"):
        value = np.sum(value) / (max(x.size, 1) if params["reduction"] == "mean" else 1)
    return value, grad, _with_sigmoid_rounding(s_value, p, z, q, gamma, ce, a_t, params, dtype), s_grad


def _torch_clamp_mask(p: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """torch.clip(p, lo, hi)'s gradient (clamp_backward): 1 where lo <= p <= hi, 0 outside."""
    return ((p >= lo) & (p <= hi)).astype(np.float64)


def _keras_probability_losses(loss, inputs: Inputs, dtype, variant, clip_grad=_jax_clip_tie) -> tuple:
    """Keras's probability losses on the jax backend, each backward step rounded to the dtype (an upstream
    g t below float16's subnormals is 0), with jnp.clip's tie gradient: KLDivergence sum t' log(t' / q'),
    q' = clip(q, fl(1e-7), 1), gradient -(g t' / r) t' / q'^2 (r = t' / q') halved where q is 1 or fl(1e-7);
    CategoricalCrossentropy(probs) -sum t log clip(p / sum p, fl(1e-7), fl(1 - 1e-7)) with p / sum p formed
    in the dtype, gradient through the normalisation with the clip's halves; value and scales the reference's."""
    first, second, params = inputs
    value, grad, s_value, s_grad = _reference(loss, first, second, params, variant)
    fl = _rounding(dtype)
    p, t = _f64(first), _f64(second)
    lo, hi = clip_bounds(1e-7, numpy_dtype(dtype))
    n = max(p.size // max(p.shape[-1], 1), 1) if params.get("reduction") == "mean" and p.ndim else 1
    g = fl(1 / n)  # the upstream of each row's sum, then every backward step rounded to the dtype
    with np.errstate(all="ignore"):
        if loss == "kl_divergence":  # t' log(r), r = t' / q': d/dq' = -(g t' / r) t' / q'^2
            q, t = np.clip(p, lo, 1.0), np.clip(t, lo, 1.0)
            d_r = fl(fl(t * g) / fl(t / q))
            return value, fl(fl(-d_r * t) * fl(1 / fl(q * q))) * clip_grad(p, lo, 1.0), s_value, s_grad
        axis = _class_axis(params)
        total = fl(np.sum(p, axis=axis, keepdims=True))
        q = fl(p / total)
        d_q = fl(fl(t * -g) / np.clip(q, lo, hi)) * clip_grad(q, lo, hi)
        d_total = fl(np.sum(fl(fl(-d_q * p) * fl(1 / fl(total * total))), axis=axis, keepdims=True))
        grad = fl(fl(d_q / total) + d_total)
    return value, grad, s_value, s_grad


def _in_float32_arithmetic(model: Model) -> Model:
    """``model`` with its scales widened to float32's bound (``_float32_arithmetic``'s widening): the modelled
    computation carried out partly in float32 (Keras off TensorFlow promotes float64 to float32)."""
    def widened(loss, inputs: Inputs, dtype, variant) -> tuple:
        value, grad, s_value, s_grad = model(loss, inputs, dtype, variant)
        return value, grad, *_widened_to_float32(dtype, (s_value, value), (s_grad, grad))
    return widened


def _two_log_bce_backward_in_dtype(loss, inputs: Inputs, dtype, variant) -> tuple:
    """Gradient of -mean(z log p + (1 - z) log(1 - p)) as autodiff forms it op by op in the dtype (Keras on
    TensorFlow): the upstream g = fl(fl(1 / N) / C) for 'mean' over [N, C] (1 otherwise), then
    fl(fl(-g z) fl(1 / p)) - fl(fl(-g fl(1 - z)) fl(1 / fl(1 - p))), each step rounded; value and scales the
    reference's (of the declared variant)."""
    first, second, params = inputs
    value, grad, s_value, s_grad = _reference(loss, first, second, params, variant)
    dt = numpy_dtype(dtype)
    p, z = np.asarray(first).astype(dt), np.asarray(second).astype(dt)
    one = np.asarray(1).astype(dt)
    if params.get("reduction") == "mean" and p.size:
        g = (one / np.asarray(max(p.size // p.shape[-1], 1)).astype(dt)).astype(dt)
        g = (g / np.asarray(p.shape[-1]).astype(dt)).astype(dt)
    else:
        g = one
    with np.errstate(all="ignore"):
        d_log_p = ((-g * z).astype(dt) * (one / p).astype(dt)).astype(dt)
        d_log_q = ((-g * (one - z).astype(dt)).astype(dt) * (one / (one - p).astype(dt)).astype(dt)).astype(dt)
        g_p = (d_log_p - d_log_q).astype(dt)
    return value, g_p.astype(np.float64), s_value, s_grad


def _sum_in_order(a: np.ndarray, axis: int, acc) -> np.ndarray:
    """The sum along ``axis`` accumulated element by element in order in dtype ``acc`` (the axis kept)."""
    return np.cumsum(a, axis=axis, dtype=acc).take([-1], axis=axis)


def _class_sums_in_order(loss, inputs: Inputs, dtype, variant) -> tuple:
    """Keras's -sum(t log(clip(p / sum(p)))) as TensorFlow computes it along a class axis that is not the last:
    sum(p), the class sum of the loss and, in the gradient, the class sum of the divide's gradient
    g_q (-p / S) / S each accumulated in class order in the dtype (float32 for bfloat16), every other step one
    op rounded to the dtype (g_q = (-g t) (1 / q), g = 1 or fl(1 / n) for 'mean'). A last class axis, which
    TensorFlow reduces vectorised, gets the reference; scales the reference's."""
    first, second, params = inputs
    value, grad, s_value, s_grad = _reference(loss, first, second, params, variant)
    ndim = np.ndim(first)
    axis = _class_axis(params) % max(ndim, 1)
    if not np.size(first) or axis == ndim - 1:
        return value, grad, s_value, s_grad
    dt = np.dtype(numpy_dtype(dtype))
    acc = np.float32 if dtype == "bfloat16" else dt
    p, t = np.asarray(first).astype(dt), np.asarray(second).astype(dt)
    lo, hi = (dt.type(b) for b in clip_bounds(1e-7, dt))
    one = dt.type(1)
    with np.errstate(all="ignore"):
        total = _sum_in_order(p, axis, acc).astype(dt)
        q = (p / total).astype(dt)
        log_q = np.log(np.clip(q, lo, hi)).astype(dt)
        rows = -np.squeeze(_sum_in_order((t * log_q).astype(dt), axis, acc).astype(np.float64), axis)
        reduction = params.get("reduction", "none")
        g = (one / dt.type(rows.size)).astype(dt) if reduction == "mean" else one
        g_q = np.where((q >= lo) & (q <= hi), ((-g * t).astype(dt) * (one / q).astype(dt)).astype(dt), dt.type(0))
        g_total = _sum_in_order((g_q * ((-p / total).astype(dt) / total).astype(dt)).astype(dt), axis, acc)
        g_p = ((g_q / total).astype(dt) + g_total.astype(dt)).astype(dt)
    value = rows if reduction == "none" else np.sum(rows) / (rows.size if reduction == "mean" else 1)
    return np.asarray(value), g_p.astype(np.float64), s_value, s_grad


PACKET_BYTES = 32  # Eigen's packet on Paddle's x86 CPU build (AVX2): 8 float32 or 4 float64 lanes


def _mean_in_packet_lanes(loss, inputs: Inputs, dtype, variant) -> tuple:
    """'mean' as Eigen's full reduction forms it (Paddle's mean_all): the elementwise losses rounded to the
    dtype, accumulated in order in each lane of a 32-byte packet, the lanes added pairwise (halving), then the
    scalar tail, then divided by n, all in the dtype; gradient and scales the reference's."""
    first, second, params = inputs
    value, grad, s_value, s_grad = _reference(loss, first, second, params, variant)
    if params.get("reduction") != "mean" or not np.size(first):  # paddle.sum is another kernel
        return value, grad, s_value, s_grad
    dt = np.dtype(numpy_dtype(dtype))
    terms = np.ravel(evaluate(loss, first, second, scales=False, **{**params, "reduction": "none"}).value)
    terms = terms.astype(np.float64).astype(dt)
    lanes = PACKET_BYTES // dt.itemsize
    body = len(terms) // lanes * lanes
    acc = np.cumsum(terms[:body].reshape(-1, lanes), axis=0, dtype=dt)[-1] if body else np.zeros(lanes, dt)
    while len(acc) > 1:  # predux: halves added lane-wise
        acc = (acc[: len(acc) // 2] + acc[len(acc) // 2:]).astype(dt)
    total = np.cumsum(np.concatenate([acc, terms[body:]]), dtype=dt)[-1]
    return np.asarray(total / dt.type(terms.size), dtype=np.float64), grad, s_value, s_grad


def _cosine_sums_in_order(loss, inputs: Inputs, dtype, variant) -> tuple:
    """Paddle's cosine_similarity: w12 = sum(x1 x2), w1 = sum(x1 x1), w2 = sum(x2 x2) along the axis, each
    product rounded to the dtype and summed in order in the dtype, then w12 / sqrt(max(w1 w2, eps^2)) in the
    dtype; gradient and scales the reference's."""
    first, second, params = inputs
    value, grad, s_value, s_grad = _reference(loss, first, second, params, variant)
    if not np.size(first):
        return value, grad, s_value, s_grad
    dt, axis = np.dtype(numpy_dtype(dtype)), _class_axis(params)
    x1, x2 = (np.moveaxis(np.asarray(a).astype(dt), axis, -1) for a in (first, second))
    w12, w1, w2 = (_sum_in_order(a.astype(dt), -1, dt)[..., 0] for a in (x1 * x2, x1 * x1, x2 * x2))
    eps = dt.type(1e-8)  # the variant cosine_product_floor_1e-8
    cos = w12 / np.sqrt(np.maximum(w1 * w2, eps * eps))
    return np.asarray(cos, dtype=np.float64), grad, s_value, s_grad


Model = Callable[[str, Inputs, str, str | None], tuple]
MODELS: dict[str, tuple[str, Model]] = {
    "warpctc_probability_floor": ("CTC on class probabilities floored at the dtype's smallest normal number "
                                  "(-log 1.2e-38 = 87.3 per frame at most in float32)", _warpctc_probability_floor),
    "ctc_log_zero_floor": ("TensorFlow's dense CTC with impossible start and end states at log(1e-307) = -706.9 "
                           "instead of -inf", _ctc_log_zero_floor),
    "clip_64": ("log-probabilities of logits clipped to max(x) - 64 along the class axis", _clip_64),
    "clip_64_mean_over_all_samples": ("clip_64 and mean_over_all_samples together (Paddle's hard-label "
                                      "cross_entropy with ignored labels)", _clip_64_mean_over_all_samples),
    "class_sum_in_dtype": ("soft-label CE -sum_c t_c log p_c with p (clipped at -64), log p and each term "
                           "rounded to the dtype and the class sum accumulated in order in the dtype",
                           _class_sum_in_dtype),
    "bce_backward_eps": ("binary CE backward (p - z) / max(p (1 - p), 1e-12), the 1e-12 in the dtype",
                         _bce_backward_eps),
    "bce_backward_eps_float32": ("binary CE backward (p - z) / max(p (1 - p), 1e-12), the 1e-12 a float32 "
                                 "constant, then in the dtype", _bce_backward_eps_float32),
    "log_softmax_backward_class_sum_in_order": ("cross entropy's gradient as torch's log_softmax backward forms it "
                                                "over a class axis that is not last: g - softmax(x) sum_c g_c, "
                                                "g = -w t', the class sum in class order in the dtype",
                                                _log_softmax_backward_class_sum_in_order),
    "cosine_backward_in_dtype": ("cosine similarity's gradient b / n_x - (sum_j b_j x_j / n_x^2) x / |x| formed op by "
                                 "op in the dtype as torch's autograd does (b = y / n_y)", _cosine_backward_in_dtype),
    "warpctc_zero_log_sentinel": ("warpctc's CTC gradient with probabilities floored, p instead of p - posterior "
                                  "where the log posterior sum is exactly 0.0 in the dtype",
                                  _warpctc_zero_log_sentinel),
    "mean_over_all_samples": ("'mean' divides the sum by every sample, ignored ones included", _mean_over_all_samples),
    "float32_arithmetic": ("the computation (or part of it) in float32: the truth within float32's error bound",
                           _float32_arithmetic),
    "computed_in_float32": ("computed in float32 with float32 constants, the result rounded to the dtype "
                            "(a compiler upcasting float16/bfloat16 arithmetic)", _computed_in_float32),
    "two_log_bce_backward_in_dtype": ("binary CE gradient -g z / p + g (1 - z) / (1 - p) formed op by op in the "
                                      "dtype, the upstream g = 1 / (N C) of 'mean' applied first (autodiff of the "
                                      "two-log form)", _two_log_bce_backward_in_dtype),
    "class_sums_in_order": ("Keras's categorical CE on probabilities along a class axis that is not the last, as "
                            "TensorFlow reduces it: sum(p), the loss's class sum and its gradient's each "
                            "accumulated in class order in the dtype (float32 for bfloat16)", _class_sums_in_order),
    "mean_in_packet_lanes": ("'mean' of the elementwise losses accumulated in order per lane of a 32-byte "
                             "packet, lanes added pairwise, in the dtype (Eigen's full reduction)",
                             _mean_in_packet_lanes),
    "cosine_sums_in_order": ("cosine similarity with its three sums along the axis accumulated in order in the "
                             "dtype (Paddle's sum over a reduced axis)", _cosine_sums_in_order),
    "smoothing_over_last_axis": ("label smoothing eps / shape[-1] instead of eps / C when the class axis is not last",
                                 _smoothing_over_last_axis),
    "keras_focal_on_jax": ("Keras's focal loss from logits on the jax backend op by op in the dtype: sigmoid as "
                           "1 / (1 + exp(-x)), clipped unguarded binary CE, q = 1 - p_t (jax.vjp's gradient)",
                           _keras_focal_on_jax),
    "keras_focal_on_torch": ("Keras's focal loss from logits on the torch backend: torch.sigmoid, torch.clip, "
                             "F.binary_cross_entropy (logs clamped at -100, backward over max(p (1 - p), 1e-12)), "
                             "q = 1 - p_t in the dtype", _keras_focal_on_torch),
    "keras_bce_on_torch": ("Keras's binary CE on probabilities on the torch backend: torch.clip, then "
                           "F.binary_cross_entropy (logs clamped at -100, backward over max(p (1 - p), 1e-12) op by "
                           "op in the dtype)", _keras_bce_on_torch),
    "keras_probs_on_jax": ("Keras's KLDivergence and CategoricalCrossentropy(probs) on the jax backend, each "
                           "backward step rounded to the dtype, jnp.clip's gradient half at a bound",
                           _keras_probability_losses),
    "keras_probs_on_torch": ("Keras's KLDivergence and CategoricalCrossentropy(probs) on the torch backend, each "
                             "backward step rounded to the dtype, torch.clip's gradient whole at a bound",
                             partial(_keras_probability_losses, clip_grad=_torch_clamp_mask)),
    "keras_focal_on_jax+float32_arithmetic": ("keras_focal_on_jax within float32's bound (its mean in float32)",
                                              _in_float32_arithmetic(_keras_focal_on_jax)),
    "keras_focal_on_torch+float32_arithmetic": ("keras_focal_on_torch within float32's bound (its mean in float32)",
                                                _in_float32_arithmetic(_keras_focal_on_torch)),
    "smoothing_over_last_axis+float32_arithmetic": ("smoothing_over_last_axis within float32's bound",
                                                    _in_float32_arithmetic(_smoothing_over_last_axis)),
}


def evaluate_model(name: str, loss: str, inputs: Inputs, dtype: str, variant: str | None) -> tuple:
    """(value, grad, scale_value, scale_grad) of model ``name`` on the cast inputs of one case."""
    return MODELS[name][1](loss, inputs, dtype, variant)
