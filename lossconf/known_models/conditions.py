"""Input conditions: facts computed from a case's inputs in the dtype under test (``INPUTS``), e.g.
``difference_above_sqrt_max``: some |x - y| squares past the dtype's largest number."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from lossconf.errormodel import finfo
from lossconf.known_models.base import Inputs, _class_axis, _f64, _log_softmax
from lossconf.reference import evaluate, numpy_dtype


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
