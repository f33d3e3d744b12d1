"""Drivers of the reference: class-axis rows and elementwise values in bounded chunks, then reductions.

A family module (softmax_family, probability, elementwise, ...) writes a kernel for one block of rows or
elements; the drivers run it chunk by chunk (at most ``CHUNK_ELEMENTS`` working-precision elements, so
the memory besides the returned arrays stays bounded), divide gradients by the mean's denominator and
reduce the values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from lossconf.reference.numpy_ref import Call

CHUNK_ELEMENTS = 1 << 18  # per-chunk working set (2 MiB of float64): stays in a core's cache


@dataclass
class Reference:
    """Truth of one call: value, gradient (working dtype) and their error-model scales (float64)."""

    value: np.ndarray
    grad: np.ndarray
    scale_value: np.ndarray | None = None
    scale_grad: np.ndarray | None = None
    grads: dict = field(default_factory=dict)  # further gradients: quantity -> (gradient, its scale)


def _row_chunks(rows: int, cols: int) -> Iterator[slice]:
    step = max(1, CHUNK_ELEMENTS // max(cols, 1))
    for start in range(0, rows, step):
        yield slice(start, min(start + step, rows))


def _to_rows(a: np.ndarray, axis: int) -> np.ndarray:
    """View (copy only when the class axis is not last) of ``a`` as [samples, classes]."""
    a = np.moveaxis(a, axis, -1)
    return a.reshape(-1, a.shape[-1])


def _from_rows(a: np.ndarray, call: Call) -> np.ndarray:
    moved = np.moveaxis(call.first, call.axis, -1).shape
    return np.moveaxis(a.reshape(moved), -1, call.axis)


def sum_factor(n: int) -> float:
    """Summation-length factor 1 + log2(n) of the pairwise-summation error bound."""
    return 1.0 + np.log2(max(n, 1))


# A row kernel maps (x [R, C], second rows, call, sg_out) to value rows ([R] or [R, C]), grad rows
# [R, C] and, when sg_out is not None, their scales (float64). ``x`` is the gradient's own block of
# rows, filled with the input in the working dtype, and ``sg_out`` the gradient scale's block: the
# kernel may compute in them and return them (no copy).
RowKernel = Callable[[np.ndarray, "np.ndarray | None", "Call", "np.ndarray | None"], tuple]


def over_rows(call: Call, kernel: RowKernel, scales: bool, per_sample: bool, denominator=None) -> Reference:
    """Run ``kernel`` over row chunks, divide gradients by the reduction's denominator, then reduce."""
    x = _to_rows(call.first, call.axis)
    second = call.second
    if second is not None:
        labels = call.loss.inputs[1].role == "labels"
        second = second.reshape(-1) if labels else _to_rows(second, call.axis)
    rows, cols = x.shape
    value = np.empty(rows if per_sample else (rows, cols), call.work)
    grad = np.empty((rows, cols), call.work)
    sv = np.empty(value.shape) if scales else None
    sg = np.empty((rows, cols)) if scales else None
    d = _denominator(call, value.size, denominator)
    for sl in _row_chunks(rows, cols):
        block = grad[sl]
        np.copyto(block, x[sl], casting="unsafe")
        out = kernel(block, None if second is None else second[sl], call, sg[sl] if scales else None)
        _store(value[sl], out[0])
        _store(block, out[1])
        if scales:
            _store(sv[sl], out[2])
            _store(sg[sl], out[3])
        _divide_grad(block, sg[sl] if scales else None, d)
    grad = _from_rows(grad, call)
    sg = _from_rows(sg, call) if scales else None
    rest = tuple(np.delete(np.array(call.first.shape), call.axis))
    if per_sample:
        value = value.reshape(rest)
        sv = sv.reshape(rest) if scales else None
    else:
        value = _from_rows(value, call)
        sv = _from_rows(sv, call) if scales else None
    return _reduce(call, value, grad, sv, sg, d)


def _store(dst: np.ndarray, src: np.ndarray) -> None:
    """dst[...] = src, skipped when the kernel already computed in place."""
    if src is not dst:
        dst[...] = src


def _denominator(call: Call, n: int, denominator=None):
    """What the gradient is divided by: 1 for none/sum, the mean's denominator (default n) for mean."""
    if call.reduction != "mean":
        return call.work.type(1)
    return call.work.type(n) if denominator is None else denominator


def _divide_grad(grad: np.ndarray, sg: np.ndarray | None, d) -> None:
    """In place, chunk by chunk while the rows are in cache: grad /= d; its scale /= d (0 when d = 0)."""
    if d == 1:
        return
    grad /= d
    if sg is not None:
        if d == 0:
            sg[...] = 0
        else:
            sg /= float(d)


def _reduce(call: Call, value, grad, sv, sg, d) -> Reference:
    """Sum the values (mean: divided by ``d``); gradients and their scales are already divided."""
    if call.reduction == "none":
        return Reference(value, grad, sv, sg)
    n = value.size
    out = np.asarray(np.sum(value, dtype=call.work) / d, dtype=call.work)
    if sv is not None:
        sv = np.asarray(float(np.sum(sv) * sum_factor(n) / float(d)) if n and d != 0 else 0.0)
    return Reference(out, grad, sv, sg)


def zero_times(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a * b with 0 * (+-inf) = 0 (the convention 0 log 0 = 0)."""
    out = a * b
    out[(a == 0) & ~np.isnan(b)] = 0
    return out



def finite_where(scale: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Scales are only meaningful where the truth is finite; elsewhere report 0 (an overflowed scale under a
    finite truth becomes the largest float64)."""
    big = np.finfo(np.float64).max
    return np.where(np.isfinite(truth) & np.isfinite(scale), scale, np.where(np.isfinite(truth), big, 0.0))



def over_elements(call: Call, kernel: Callable, scales: bool) -> Reference:
    """Run ``kernel(x, y, extra)`` over flat chunks; y and pos_weight broadcast to x's shape."""
    shape = call.first.shape
    x = call.first.reshape(-1)
    ys = [] if call.second is None else [np.broadcast_to(call.second, shape).reshape(-1)]
    if call.params.get("pos_weight") is not None:
        ys.append(np.broadcast_to(call.params["pos_weight"], shape).reshape(-1))
    n = x.size
    value, grad = np.empty(n, call.work), np.empty(n, call.work)
    sv = np.empty(n) if scales else None
    sg = np.empty(n) if scales else None
    d = _denominator(call, n)
    for sl in _row_chunks(n, 1):
        out = kernel(x[sl].astype(call.work), *[y[sl].astype(call.work) for y in ys])
        value[sl], grad[sl] = out[0], out[1]
        if scales:
            sv[sl], sg[sl] = finite_where(out[2], out[0]), finite_where(out[3], out[1])
        _divide_grad(grad[sl], sg[sl] if scales else None, d)
    sv, sg = (None, None) if not scales else (sv.reshape(shape), sg.reshape(shape))
    return _reduce(call, value.reshape(shape), grad.reshape(shape), sv, sg, d)

