"""Elementwise losses: sigmoid and binary cross-entropy, squared/absolute/root-mean-squared error, sigmoid.

Sigmoid CE is ``pw z softplus(-x) + (1 - z) softplus(x)``, softplus via ``max(x,0) + log1p(exp(-|x|))``;
``log(1 - p)`` is ``log1p(-p)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from lossconf.reference.drivers import Reference, finite_where, over_elements, sum_factor, zero_times
from lossconf.reference.probability import clip_bounds, clipped_logs, constant_in_dtype

if TYPE_CHECKING:
    from lossconf.reference.numpy_ref import Call


def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), via exp(-|x|) so that nothing overflows."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _sigmoid_cross_entropy(call: Call, scales: bool) -> Reference:
    eps = call.params["label_smoothing"]

    def kernel(x, z, pw=None):
        w = call.work.type
        zc = 1 - z
        if eps:  # smoothed z' and 1 - z' = (1-eps)(1-z) + eps/2, which does not cancel as z' -> 1
            z, zc = w(1 - w(eps)) * z + w(eps) / 2, w(1 - w(eps)) * zc + w(eps) / 2
        pw = w(1) if pw is None else pw
        value = zero_times(pw * z, softplus(-x)) + zero_times(zc, softplus(x))
        grad = zero_times(zc, sigmoid(x)) - zero_times(pw * z, sigmoid(-x))
        nan = np.isnan(x) | np.isnan(z)
        value[nan], grad[nan] = np.nan, np.nan
        if not scales:
            return value, grad
        ax, az, apw = np.nan_to_num(np.abs(x), posinf=0), np.abs(z), np.abs(pw)
        sv = (1 + az + apw * az) * (ax + np.log1p(np.exp(-ax)))
        # sigma(+-x) computed as exp(x - logaddexp(x, 0)) (optax, jax.nn) carries a relative error of
        # about u |x|: the gradient terms are scaled by (1 + |x|), not just by their size
        sg = 1 + (1 + apw) * az + (np.abs(zc) * sigmoid(x) + apw * az * sigmoid(-x)) * ax
        sg = np.where(np.isnan(sg), 1 + (1 + apw) * az, sg)
        return value, grad, sv.astype(np.float64), np.broadcast_to(sg, x.shape).astype(np.float64)

    return over_elements(call, kernel, scales)


def _binary_cross_entropy(call: Call, scales: bool) -> Reference:
    clip, log_min = call.params.get("clip"), call.params.get("log_min")
    bounds = None if clip is None else clip_bounds(clip, call.first.dtype)
    offset = call.params.get("log_offset")
    offset = None if offset is None else constant_in_dtype(offset, call.first.dtype)  # tf_keras adds it in dtype

    def kernel(p, z):
        w = call.work.type
        if offset is None:
            log_p, log_1mp, inside = clipped_logs(p, bounds)
            den_p, den_1mp, o = p, 1 - p, w(0)
        else:
            log_p, log_1mp, inside = _offset_logs(p, bounds, offset)
            o = w(offset)
            den_p, den_1mp = p + o, (1 - p) + o
        pass_p = pass_1mp = inside
        if log_min is not None:
            pass_p, pass_1mp = inside & (log_p >= log_min), inside & (log_1mp >= log_min)
            log_p, log_1mp = np.maximum(log_p, w(log_min)), np.maximum(log_1mp, w(log_min))
        value = -(zero_times(z, log_p) + zero_times(1 - z, log_1mp))
        # d/dp: -z/(p+o) + (1-z)/(1-p+o), each term 0 where its coefficient is 0 or its log is clamped
        term_p = np.where(pass_p & (z != 0), -z / np.where(den_p == 0, 1, den_p), 0)
        term_p = np.where(pass_p & (z != 0) & (den_p == 0), -np.inf, term_p)
        term_1mp = np.where(pass_1mp & (z != 1), (1 - z) / np.where(den_1mp == 0, 1, den_1mp), 0)
        term_1mp = np.where(pass_1mp & (z != 1) & (den_1mp == 0), np.inf, term_1mp)
        grad = term_p + term_1mp
        interior = pass_p & pass_1mp & (den_p > 0) & (den_1mp > 0)
        # one fraction: no cancellation near the optimum p = z - o (1 - 2z)
        grad = np.where(interior, ((p - z) + o * (1 - 2 * z)) / (den_p * den_1mp), grad)
        nan = np.isnan(p) | np.isnan(z)
        value[nan], grad[nan] = np.nan, np.nan
        if not scales:
            return value, grad
        z64, lp, l1 = z.astype(np.float64), np.abs(log_p).astype(np.float64), np.abs(log_1mp).astype(np.float64)
        # +1: a log whose argument is rounded (1 - p, and p + o with an offset) errs by ~u absolute
        sv = zero_times(np.abs(z64), lp + bool(offset)) + zero_times(np.abs(1 - z64), l1 + 1)
        sg = np.abs(term_p).astype(np.float64) + np.abs(term_1mp).astype(np.float64)
        return value, grad, sv, sg

    return over_elements(call, kernel, scales)


def _offset_logs(p: np.ndarray, bounds: tuple[float, float] | None,
                 offset: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log(p' + o), log(1 - p' + o) for p' = clip(p, lo, hi), and the mask where the clip is inactive.

    Without cancellation: near 1 the logs go through log1p, whose argument is exact up to one rounding
    (p - 1 and 1 - p are exact for p >= 1/2 by Sterbenz, o - p for p <= 2o); the clipped sides use the
    exact bounds the same way.
    """
    w = p.dtype.type
    o = w(offset)
    upper = p > 0.5
    log_p = np.where(upper, np.log1p((p - 1) + o), np.log(p + o))
    log_1mp = np.where(upper, np.log((1 - p) + o), np.log1p(o - p))
    if bounds is None:
        return log_p, log_1mp, np.ones(p.shape, bool)
    lo, hi = w(bounds[0]), w(bounds[1])
    low, high = p < lo, p > hi
    log_p = np.where(low, np.log(lo + o), np.where(high, np.log1p((hi - 1) + o), log_p))
    log_1mp = np.where(low, np.log1p(o - lo), np.where(high, np.log((1 - hi) + o), log_1mp))
    return log_p, log_1mp, ~(low | high)


def _mean_squared_error(call: Call, scales: bool) -> Reference:
    factor = call.params["factor"]

    def kernel(x, y):
        d = x - y
        value = call.work.type(factor) * d * d
        grad = call.work.type(2 * factor) * d
        if not scales:
            return value, grad
        return value, grad, np.abs(value).astype(np.float64), np.abs(grad).astype(np.float64)

    return over_elements(call, kernel, scales)


def _mean_absolute_error(call: Call, scales: bool) -> Reference:
    def kernel(x, y):
        d = x - y
        value, grad = np.abs(d), np.sign(d)
        if not scales:
            return value, grad
        return value, grad, value.astype(np.float64), np.ones(d.shape)

    return over_elements(call, kernel, scales)


def _root_mean_squared_error(call: Call, scales: bool) -> Reference:
    x = call.first.astype(call.work)
    d = x - np.broadcast_to(call.second, x.shape).astype(call.work)
    n = d.size
    value = np.sqrt(np.sum(d * d) / call.work.type(n)) if n else np.asarray(np.nan, call.work)
    grad = d / (n * value) if value != 0 else np.full_like(d, np.nan)
    value = np.asarray(value, call.work)
    if not scales:
        return Reference(value, grad)
    f = sum_factor(n)
    sv = np.asarray(f * float(value)) if np.isfinite(value) else np.asarray(0.0)
    sg = f * np.abs(grad).astype(np.float64)
    return Reference(value, grad, sv, finite_where(sg, grad))


def _sigmoid_loss(call: Call, scales: bool) -> Reference:
    def kernel(x):
        s = sigmoid(x)
        s_neg = sigmoid(-x)  # 1 - s without cancellation
        grad = s * s_neg
        if not scales:
            return s, grad
        s64, ax = s.astype(np.float64), np.abs(x).astype(np.float64)
        ax = np.where(np.isfinite(ax), ax, 0)
        sn64 = s_neg.astype(np.float64)
        # y = fl(s) is off by ~u (s + |x| s (1 - s)) (exp's argument), and autodiff forms y (1 - y), so
        # the error of y passes into 1 - y unscaled: where s -> 1 it is ~u s^2 against a tiny s (1 - s)
        return s, grad, s64 * (1 + ax * sn64), s64 * sn64 * (1 + ax) + s64 * s64

    return over_elements(call, kernel, scales)


def _sigmoid_focal_loss(call: Call, scales: bool) -> Reference:
    alpha, gamma = call.params["alpha"], call.params["gamma"]

    def kernel(x, z):
        w = call.work.type
        g, zc = w(gamma), 1 - z
        p, pn = sigmoid(x), sigmoid(-x)  # pn = 1 - p without cancellation
        ce = zero_times(z, softplus(-x)) + zero_times(zc, softplus(x))
        q = z * pn + zc * p  # 1 - p_t, a sum of non-negative terms
        a_t = w(1) if alpha is None else w(alpha) * z + (1 - w(alpha)) * zc
        q_g = q**g
        p_minus_z = zc * p - z * pn
        dp = p * pn
        grad = a_t * (zero_times(g * (1 - 2 * z) * dp * ce, q ** (g - 1)) + q_g * p_minus_z)
        value = a_t * zero_times(q_g, ce)
        nan = np.isnan(x) | np.isnan(z)
        value[nan], grad[nan] = np.nan, np.nan
        if not scales:
            return value, grad
        x64, z64 = x.astype(np.float64), z.astype(np.float64)
        ax = np.nan_to_num(np.abs(x64), posinf=0)
        d = 1 + ax
        q64, ce64, dp64, p64 = q.astype(np.float64), ce.astype(np.float64), dp.astype(np.float64), p.astype(np.float64)
        a64 = np.abs(np.asarray(a_t, np.float64))
        s_ce = (1 + 2 * np.abs(z64)) * (ax + np.log1p(np.exp(-ax)))
        side = np.abs(1 - 2 * z64)
        with np.errstate(divide="ignore", invalid="ignore"):
            qg, qg1, qg2 = q64**gamma, q64 ** (gamma - 1), q64 ** (gamma - 2)
        sv = a64 * (zero_times(qg, s_ce) + zero_times(gamma * ce64 * d, qg1))
        sg = a64 * (qg * (1 + 2 * np.abs(z64) + d)
                    + zero_times(gamma * d * (np.abs(p_minus_z.astype(np.float64)) + side * (dp64 + p64 * p64) * ce64),
                                 qg1)
                    + zero_times(gamma * abs(gamma - 1) * d * side * dp64 * ce64, qg2))
        return value, grad, sv, sg

    return over_elements(call, kernel, scales)


LOSSES: dict[str, Callable[[Call, bool], Reference]] = {
    "sigmoid_cross_entropy": _sigmoid_cross_entropy,
    "binary_cross_entropy": _binary_cross_entropy,
    "mean_squared_error": _mean_squared_error,
    "mean_absolute_error": _mean_absolute_error,
    "root_mean_squared_error": _root_mean_squared_error,
    "sigmoid": _sigmoid_loss,
    "sigmoid_focal_loss": _sigmoid_focal_loss,
}
