"""Robust regression and count losses: Huber, smooth L1, log-cosh, Poisson negative log-likelihood.

Each is elementwise in d = x - y (Poisson in the log-rate or rate x and the count y). Forms without
cancellation: Huber's linear part as delta (|d| - delta/2) with |d| >= delta; log cosh d as
log1p(2 sinh(d/2)^2) for |d| <= 1 and |d| - log 2 + log1p(exp(-2|d|)) beyond; the Poisson Stirling term
in the working precision (its own cancellation near y = 1 is a few working ulps, far below any dtype's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from lossconf.reference.drivers import Reference, over_elements, zero_times
from lossconf.reference.probability import constant_in_dtype

if TYPE_CHECKING:
    from lossconf.reference.numpy_ref import Call


def _huber(call: Call, scales: bool) -> Reference:
    def kernel(x, y):
        w = call.work.type
        delta = w(call.params["delta"])
        d = x - y
        ad = np.abs(d)
        inner = ad <= delta
        value = np.where(inner, d * d / 2, delta * (ad - delta / 2))
        grad = np.where(inner, d, delta * np.sign(d))
        if not scales:
            return value, grad
        ad64, dl = ad.astype(np.float64), float(delta)
        sv = np.where(inner, ad64 * ad64 / 2, dl * (ad64 + dl / 2))
        return value, grad, sv, np.minimum(ad64, dl)

    return over_elements(call, kernel, scales)


def _smooth_l1(call: Call, scales: bool) -> Reference:
    def kernel(x, y):
        beta = call.work.type(call.params["beta"])
        d = x - y
        ad = np.abs(d)
        inner = ad < beta  # empty when beta = 0: the absolute error
        safe_beta = beta if beta > 0 else call.work.type(1)
        value = np.where(inner, d * d / (2 * safe_beta), ad - beta / 2)
        grad = np.where(inner, d / safe_beta, np.sign(d))
        if not scales:
            return value, grad
        ad64, b = ad.astype(np.float64), float(beta)
        sv = np.where(inner, ad64 * ad64 / (2 * (b or 1.0)), ad64 + b / 2)
        sg = np.minimum(ad64 / b, 1.0) if b > 0 else np.ones(ad64.shape)
        return value, grad, sv, np.where(np.isnan(sg), 1.0, sg)

    return over_elements(call, kernel, scales)


def _log_cosh(call: Call, scales: bool) -> Reference:
    def kernel(x, y):
        w = call.work.type
        d = x - y
        ad = np.abs(d)
        small = ad <= 1
        near = np.log1p(2 * np.sinh(np.where(small, d, 0) / 2) ** 2)
        far = ad - np.log(w(2)) + np.log1p(np.exp(-2 * ad))
        value = np.where(small, near, far)
        grad = np.tanh(d)
        if not scales:
            return value, grad
        ad64 = ad.astype(np.float64)
        return value, grad, 1 + 3 * ad64, 1 + 2 * ad64

    return over_elements(call, kernel, scales)


def _poisson_nll(call: Call, scales: bool) -> Reference:
    log_input, full = call.params["log_input"], call.params["full"]
    offset = call.params.get("log_offset")
    offset = 0.0 if offset is None or log_input else constant_in_dtype(offset, call.first.dtype)

    def kernel(x, y):
        w = call.work.type
        o = w(offset)
        if log_input:
            e = np.exp(x)
            value = e - zero_times(y, x)
            grad = e - y
        else:
            log_rate = np.log(x + o)
            value = x - zero_times(y, log_rate)
            grad = 1 - np.where(y == 0, 0, y / (x + o))
            grad = np.where((y != 0) & (x + o == 0), -np.inf, grad)
        stirling = None
        if full:  # y log y - y + log(2 pi y) / 2 where y > 1 (a constant in x)
            big = y > 1
            ys = np.where(big, y, 1)
            two_pi = 8 * np.arctan(w(1))  # in the working precision (np.pi is a float64)
            stirling = np.where(big, ys * np.log(ys) - ys + np.log(two_pi * ys) / 2, 0)
            value = value + stirling
        nan = np.isnan(x) | np.isnan(y)
        value[nan], grad[nan] = np.nan, np.nan
        if not scales:
            return value, grad
        x64, y64 = x.astype(np.float64), y.astype(np.float64)
        if log_input:
            e64 = np.exp(x64)
            sv, sg = e64 + np.abs(zero_times(y64, x64)), e64 + y64
        else:
            lr = np.abs(log_rate).astype(np.float64)
            sv = x64 + zero_times(y64, lr + bool(offset))
            den = (x + o).astype(np.float64)
            sg = 1 + np.where(y64 == 0, 0, y64 / np.where(den == 0, 1, den))
        if full:
            ys64 = ys.astype(np.float64)
            sv = sv + np.where(y64 > 1, ys64 * np.abs(np.log(ys64)) + ys64 + np.abs(np.log(2 * np.pi * ys64)) / 2 + 1,
                               0)
        return value, grad, sv, sg

    return over_elements(call, kernel, scales)


LOSSES: dict[str, Callable[[Call, bool], Reference]] = {
    "huber": _huber,
    "smooth_l1": _smooth_l1,
    "log_cosh": _log_cosh,
    "poisson_nll": _poisson_nll,
}
