"""Probability losses: categorical cross-entropy and KL divergence, and the clip bounds Keras uses."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from lossconf.reference.drivers import Reference, finite_where, over_rows, sum_factor, zero_times

if TYPE_CHECKING:
    from lossconf.reference.numpy_ref import Call


def constant_in_dtype(c: float, dtype) -> float:
    """fl_d(c): a Python constant as a framework holds it in the input's dtype d (exact in float64)."""
    return float(np.asarray(c, np.float64).astype(dtype))


def clip_bounds(clip: float, dtype) -> tuple[float, float]:
    """(lo, hi) = (fl_d(clip), fl_d(1 - lo)): clip bounds computed in the input's dtype d, as Keras does.

    float32: (1.0000000116860974e-07, 0.99999988); float16 and bfloat16: hi = 1 (p = 1 is not clipped).
    """
    lo = constant_in_dtype(clip, dtype)
    return lo, constant_in_dtype(1 - lo, dtype)  # 1 - lo is exact in float64 except for float64's own lo


def clipped_logs(p: np.ndarray, bounds: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log(p'), log(1 - p') for p' = clip(p, lo, hi), and the mask where the clip is inactive (lo <= p <= hi).

    The bounds are exact in the working precision; a clipped side uses log(lo), log1p(-lo), log1p(hi - 1)
    and log(1 - hi) (hi - 1 is exact by Sterbenz), so nothing cancels.
    """
    log_p, log_1mp = np.log(p), np.log1p(-p)
    if bounds is None:
        return log_p, log_1mp, np.ones(p.shape, bool)
    w = p.dtype.type
    lo, hi = w(bounds[0]), w(bounds[1])
    low, high = p < lo, p > hi
    log_p = np.where(low, np.log(lo), np.where(high, np.log1p(hi - 1), log_p))
    log_1mp = np.where(low, np.log1p(-lo), np.where(high, np.log(1 - hi), log_1mp))
    return log_p, log_1mp, ~(low | high)


def _minus_ratio(t: np.ndarray, q: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """d(-t log q)/dq = -t/q where q is not clipped and t != 0 (0 elsewhere); -inf sign(t) at q = 0."""
    live = inside & (t != 0)
    g = np.where(live, -t / np.where(q == 0, 1, q), 0)
    return np.where(live & (q == 0), -np.inf * np.sign(t), g)


def _nan_rows(value: np.ndarray, grad: np.ndarray, *inputs: np.ndarray) -> None:
    """A NaN anywhere in a sample's inputs makes its value and its whole gradient row NaN (in place)."""
    rows = np.logical_or.reduce([np.isnan(a).any(axis=1) for a in inputs])
    value[rows] = np.nan
    grad[rows] = np.nan


def _categorical_cross_entropy(call: Call, scales: bool) -> Reference:
    clip = call.params.get("clip")
    bounds = None if clip is None else clip_bounds(clip, call.first.dtype)
    normalize = call.params.get("normalize", False)

    def kernel(p, t, call, sg_out):
        t = t.astype(call.work)
        total_p = np.sum(p, axis=1, keepdims=True) if normalize else call.work.type(1)
        q = p / total_p if normalize else p
        log_q, _, inside = clipped_logs(q, bounds)  # the gradient below only uses q where inside
        value = -np.sum(zero_times(t, log_q), axis=1)
        g = _minus_ratio(t, q, inside)
        if normalize:
            kept_t = np.sum(np.where(inside, t, 0), axis=1, keepdims=True)
            g = (g + kept_t) / total_p
        _nan_rows(value, g, p, t)
        if sg_out is None:
            return value, g
        ta = np.abs(t).astype(np.float64)
        logq = np.abs(log_q).astype(np.float64)
        sv = sum_factor(p.shape[1]) * np.sum(zero_times(ta, logq + 1), axis=1)
        q64 = q.astype(np.float64)
        sg = np.where(inside & (ta != 0), ta / np.where(q64 == 0, 1, q64), 0)
        if normalize:  # sum(p) and the sum over classes autodiff forms for it err by (1 + log2 C) u
            kept_ta = np.sum(np.where(inside, ta, 0), axis=1, keepdims=True)
            sg = sum_factor(p.shape[1]) * (sg + kept_ta) / np.asarray(total_p, np.float64)
        return value, g, finite_where(sv, value), finite_where(sg, g)

    return over_rows(call, kernel, scales, per_sample=True)


def _kl_divergence(call: Call, scales: bool) -> Reference:
    clip = call.params.get("clip")
    log_input = call.params["log_input"]

    def kernel(q, p, call, sg_out):
        p = p.astype(call.work)
        inside = np.ones(q.shape, bool)
        if clip is not None:  # Keras clips both to [fl_d(clip), 1]
            lo = call.work.type(constant_in_dtype(clip, call.first.dtype))
            p = np.clip(p, lo, 1)
            inside = q >= lo
            q = np.maximum(q, lo)
        log_q = q if log_input else np.log(q)
        terms = p * (np.log(p) - log_q)
        terms[p == 0] = 0  # 0 log(0 / q) = 0 for every q, also q = 0 (log q = -inf)
        value = np.sum(terms, axis=1)
        if log_input:
            g = -p.copy()
        else:
            g = _minus_ratio(p, q, inside)
        _nan_rows(value, g, q, p)
        if sg_out is None:
            return value, g
        pa = np.abs(p).astype(np.float64)
        mags = np.abs(np.log(p)).astype(np.float64) + np.abs(log_q).astype(np.float64)
        if not log_input:  # from probabilities implementations form log(p / q): a rounded argument, ~u absolute
            mags += 1
        sv = sum_factor(q.shape[1]) * np.sum(zero_times(pa, mags), axis=1)
        sg = pa if log_input else np.where(inside & (pa != 0), pa / np.where(q == 0, 1, q).astype(np.float64), 0)
        return value, g, finite_where(sv, value), finite_where(sg, g)

    return over_rows(call, kernel, scales, per_sample=True)



LOSSES: dict[str, Callable[[Call, bool], Reference]] = {
    "categorical_cross_entropy": _categorical_cross_entropy,
    "kl_divergence": _kl_divergence,
}
