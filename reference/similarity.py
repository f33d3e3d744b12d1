"""Similarity losses: the cosine of two vectors along the axis, per sample.

Sums of squares and the dot product are formed in the working precision (products of float32 inputs are
exact in float64), so the cosine is accurate to a few working ulps relative to sum |x y| / (|x| |y|),
which the error model's scale carries anyway. The floor variants clamp each norm, or their product, at a
constant held in the input's dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from lossconf.reference.drivers import Reference, finite_where, over_rows, sum_factor
from lossconf.reference.probability import constant_in_dtype

if TYPE_CHECKING:
    from lossconf.reference.numpy_ref import Call


def _cosine_rows(x: np.ndarray, y: np.ndarray, call: Call, sg_out: np.ndarray | None) -> tuple:
    p = call.params
    w = call.work.type
    y = y.astype(call.work)
    floor = None if p["norm_floor"] is None else w(constant_in_dtype(p["norm_floor"], call.first.dtype))
    dot = np.sum(x * y, axis=1)
    nx2, ny2 = np.sum(x * x, axis=1), np.sum(y * y, axis=1)
    if floor is not None and p["floor_product"]:
        clamped = nx2 * ny2 < floor * floor
        n = np.where(clamped, floor, np.sqrt(nx2 * ny2))
        c = dot / n
        grad = y / n[:, None] - np.where(clamped, 0, c / np.where(nx2 == 0, 1, nx2))[:, None] * x
        denom = n
    else:
        x_clamped = np.zeros(nx2.shape, bool) if floor is None else nx2 < floor * floor
        nx = np.sqrt(nx2) if floor is None else np.maximum(np.sqrt(nx2), floor)
        ny = np.sqrt(ny2) if floor is None else np.maximum(np.sqrt(ny2), floor)
        denom = nx * ny
        c = dot / denom  # 0/0 = NaN for a zero vector without a floor
        grad = y / denom[:, None] - np.where(x_clamped, 0, c / np.where(nx2 == 0, 1, nx2))[:, None] * x
        grad[denom == 0] = np.nan
    nan = np.isnan(x).any(axis=1) | np.isnan(y).any(axis=1)
    c[nan], grad[nan] = np.nan, np.nan
    value = w(p["offset"]) + w(p["sign"]) * c
    grad *= w(p["sign"])
    if sg_out is None:
        return value, grad
    f = sum_factor(x.shape[1])
    d64 = np.asarray(denom, np.float64)
    d64 = np.where(d64 == 0, np.inf, d64)
    abs_dot = np.sum(np.abs(x * y), axis=1).astype(np.float64) / d64
    c64 = np.abs(c).astype(np.float64)
    nx2_64 = nx2.astype(np.float64)
    sv = f * (abs_dot + c64) + abs(p["offset"])
    sg = f * (np.abs(y).astype(np.float64) / d64[:, None]
              + ((c64 + abs_dot) / np.where(nx2_64 == 0, np.inf, nx2_64))[:, None] * np.abs(x).astype(np.float64))
    return value, grad, finite_where(sv, value), finite_where(sg, grad)


def _cosine_similarity(call: Call, scales: bool) -> Reference:
    return over_rows(call, _cosine_rows, scales, per_sample=True)


LOSSES: dict[str, Callable[[Call, bool], Reference]] = {
    "cosine_similarity": _cosine_similarity,
}
