"""Softmax family: softmax and sparse softmax cross-entropy, softmax, log_softmax, label smoothing.

``z = x - max(x)``, ``r = sum_{c != argmax} exp(z_c)``, ``log-sum = log1p(r)``; the loss is
``sum_c w_c t_c (log1p(r) - z_c)``, a sum of non-negative terms; the gradient at the arg-max class is
``(sum_{c != a} w_c t_c - w_a t_a r) / (1 + r)`` instead of ``p_a - t_a``. Sparse CE works from the labels
alone for rows without NaN/inf (no dense one-hot), in place in the gradient's own output block, so a
[4096, 131072] call needs no input-sized temporaries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lossconf.reference.drivers import Reference, finite_where, over_rows, sum_factor, zero_times

if TYPE_CHECKING:
    from lossconf.reference.numpy_ref import Call


@dataclass
class _Softmax:
    """Row quantities: z = x - max (limits for +inf rows), e = exp(z) with e_argmax = 1, r, log1p(r)."""

    z: np.ndarray  # [R, C]; overwritten by exp(z) in _exp_parts
    argmax: np.ndarray  # [R]
    rows: np.ndarray  # arange(R)
    m: np.ndarray  # row max (0 for rows with +inf logits, which are already shifted)


def _shift(x: np.ndarray) -> _Softmax:
    """In place: x -> x - max(x) per row; rows whose max is +inf get their limit (0 / -inf)."""
    m = np.max(x, axis=1)
    inf_rows = np.isposinf(m)
    if inf_rows.any():
        x[inf_rows] = np.where(np.isposinf(x[inf_rows]), 0.0, -np.inf)
        m = np.where(inf_rows, 0, m)  # work in the shifted frame for these rows
    x -= m[:, None]
    argmax = np.argmax(x, axis=1)
    return _Softmax(x, argmax, np.arange(x.shape[0]), m)


def _exp_parts(s: _Softmax) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """In place z -> e = exp(z); returns (e, r = sum of e off the arg-max, L = log1p(r))."""
    e = np.exp(s.z, out=s.z)
    e[s.rows, s.argmax] = 0
    r = np.sum(e, axis=1)
    e[s.rows, s.argmax] = 1
    return e, r, np.log1p(r)


def _smoothed(t: np.ndarray, call: Call) -> np.ndarray:
    """Targets with label smoothing: (1-eps) t + eps/C, or + eps/(C-1) (1-t) for the C-1 variant."""
    eps = call.params.get("label_smoothing", 0.0)
    if eps == 0:
        return t
    c = t.shape[1]
    w = call.work.type
    if call.params.get("smoothing_denominator", "C") == "C":
        return w(1 - w(eps)) * t + w(eps) / w(c)
    spread = w(eps) / w(c - 1) * (1 - t) if c > 1 else 0.0
    return w(1 - w(eps)) * t + spread


def _xent_rows(x: np.ndarray, t: np.ndarray, call: Call, sg_out: np.ndarray | None) -> tuple:
    """Softmax CE rows with dense weighted targets wt = w_c t'_c (x is a working copy, consumed)."""
    nan_rows = np.isnan(x).any(axis=1) | np.isnan(t).any(axis=1)
    xa = np.abs(x) if sg_out is not None else None
    s = _shift(x)
    t_rest = t.copy()
    t_rest[s.rows, s.argmax] = 0
    t_rest_sum = np.sum(t_rest, axis=1)
    del t_rest
    t_a = t[s.rows, s.argmax]
    total = t_rest_sum + t_a
    lin = -np.einsum("ij,ij->i", t, s.z)
    redo = np.isnan(lin)  # 0 * (-inf) terms: recompute those rows with the 0 log 0 convention
    if redo.any():
        lin[redo] = -np.sum(zero_times(t[redo], s.z[redo]), axis=1)
    e, r, big_l = _exp_parts(s)
    value = total * big_l + lin
    p = (e / (1 + r)[:, None]).astype(np.float64) if sg_out is not None else None  # before e becomes the gradient
    grad = e
    grad *= (total / (1 + r))[:, None]
    grad -= t
    grad[s.rows, s.argmax] = (t_rest_sum - t_a * r) / (1 + r)
    value[nan_rows] = np.nan
    grad[nan_rows] = np.nan
    if sg_out is None:
        return value, grad
    lse = np.abs(np.where(np.isfinite(s.m), s.m, 0) + big_l).astype(np.float64)
    a = (1 + np.where(np.isfinite(xa), xa, 0).astype(np.float64) + lse[:, None])  # 1 + |x_c| + |lse|
    ta = np.abs(t).astype(np.float64)
    factor = sum_factor(x.shape[1])
    sv = factor * np.sum(ta * a, axis=1)
    sg = factor * (np.sum(ta, axis=1)[:, None] * p + ta) * a
    return value, grad, finite_where(sv, value), finite_where(sg, grad)



def _class_weights(call: Call, cols: int) -> np.ndarray | None:
    w = call.params.get("weight")
    return None if w is None else w.astype(call.work)


def _softmax_cross_entropy(call: Call, scales: bool) -> Reference:
    def kernel(x, t, call, sg_out):
        t = _smoothed(t.astype(call.work), call)
        w = _class_weights(call, x.shape[1])
        if w is not None:
            t = t * w
        return _xent_rows(x, t, call, sg_out)

    return over_rows(call, kernel, scales, per_sample=True)


def _sparse_softmax_cross_entropy(call: Call, scales: bool) -> Reference:
    labels = call.second
    kept = _kept(call, labels)
    w = call.params.get("weight")
    if call.params["mean_denominator"] == "count" or w is None:
        denom = call.work.type(np.count_nonzero(kept))
    else:
        denom = np.sum(w.astype(call.work)[labels[kept]], dtype=call.work)
    ref = over_rows(call, _sparse_rows, scales, per_sample=True, denominator=denom)
    if call.reduction == "mean" and not kept.any():
        if call.params["all_ignored"] == "zero":
            ref.value = np.asarray(0, call.work)
        ref.grad[...] = 0  # nothing depends on the logits
    return ref


def _kept(call: Call, labels: np.ndarray) -> np.ndarray:
    ignore = call.params.get("ignore_index")
    return labels != ignore if ignore is not None else np.ones(labels.shape, bool)


def _sparse_rows(x: np.ndarray, labels: np.ndarray, call: Call, sg_out: np.ndarray | None) -> tuple:
    """Sparse CE rows: finite rows by the labels-only path, the others (and weighted smoothing) densely."""
    kept = _kept(call, labels)
    y = np.where(kept, labels, 0)  # any valid class for ignored rows: their results are zeroed below
    on, off = _smoothing_levels(call, x.shape[1])
    w = _class_weights(call, x.shape[1])
    if w is not None and off != 0:  # targets w_c * off differ per class: no labels-only form
        out = _xent_rows(x, _dense_targets(y, x.shape[1], call), call, sg_out)
    else:
        t_lab = on if w is None else on * w[y]
        bad = np.flatnonzero(~np.isfinite(np.sum(x, axis=1)))  # NaN or +-inf somewhere in the row
        slow = _xent_rows(x[bad], _dense_targets(y[bad], x.shape[1], call), call, sg_out)
        x[bad] = 0
        out = _onehot_xent_rows(x, y, np.broadcast_to(t_lab, y.shape), off, call, sg_out)
        for o, s in zip(out, slow, strict=True):
            o[bad] = s
    if not kept.all():
        for o in out:
            o[~kept] = 0  # ignored samples contribute nothing, whatever their logits
    return out


def _smoothing_levels(call: Call, c: int) -> tuple:
    """(on, off): ``_smoothed`` of a one-hot target at its label and elsewhere, rounded the same way."""
    eps = call.params.get("label_smoothing", 0.0)
    w = call.work.type
    if eps == 0:
        return w(1), w(0)
    if call.params.get("smoothing_denominator", "C") == "C":
        off = w(eps) / w(c)
        return w(1 - w(eps)) + off, off
    return w(1 - w(eps)), (w(eps) / w(c - 1) if c > 1 else w(0))


def _dense_targets(y: np.ndarray, c: int, call: Call) -> np.ndarray:
    """Smoothed, weighted one-hot targets of labels ``y`` as a dense [R, C] array."""
    t = np.zeros((len(y), c), call.work)
    t[np.arange(len(y)), y] = 1
    t = _smoothed(t, call)
    w = _class_weights(call, c)
    return t * w if w is not None else t


def _onehot_xent_rows(x: np.ndarray, y: np.ndarray, t_lab: np.ndarray, off, call: Call,
                      sg_out: np.ndarray | None) -> tuple:
    """``_xent_rows`` for finite logits and targets t = off except t_lab at label y, from the labels alone.

    Same formulas and roundings as ``_xent_rows``, without a dense target array: x is turned into the
    gradient in place, and the only other [R, C] arrays are the scale and, with smoothing, one temporary.
    """
    n, c = x.shape
    rows = np.arange(n)
    if sg_out is not None:
        sg = np.abs(x, out=sg_out)  # becomes the gradient's scale
        x_y = np.abs(x[rows, y]).astype(np.float64)
    a = np.argmax(x, axis=1)
    m = x[rows, a]
    x -= m[:, None]
    z_y = x[rows, y]
    lin = -(t_lab * z_y)  # -sum_c t_c z_c, every term >= 0
    if off:
        x[rows, y] = 0
        lin -= off * np.sum(x, axis=1)
        x[rows, y] = z_y
    np.exp(x, out=x)
    x[rows, a] = 0
    r = np.sum(x, axis=1)
    x[rows, a] = 1
    big_l = np.log1p(r)
    total = off * (c - 1) + t_lab
    t_a = np.where(a == y, t_lab, off)
    t_rest = np.where(a == y, off * (c - 1), off * max(c - 2, 0) + t_lab)  # sum_{c != a} t_c
    value = total * big_l + lin
    e_y = x[rows, y]
    x *= (total / (1 + r))[:, None]  # total * softmax(x)
    if sg_out is not None:
        lse = np.abs(m + big_l).astype(np.float64)
        sg += (1 + lse)[:, None]  # 1 + |x_c| + |lse|
        a_y = 1 + x_y + lse
        f = sum_factor(c)
        sv = f * (t_lab * a_y)
        if off:
            sv += f * off * (np.sum(sg, axis=1) - a_y)
            sg *= x + off
        else:
            sg *= x
        sg *= f
        p = (1 / (1 + r)).astype(np.float64)  # softmax at the arg-max
        tot = total.astype(np.float64)
        sg[rows, y] = f * a_y * (tot * e_y.astype(np.float64) * p + t_lab)
        sg[rows, a] = f * (1 + np.abs(m).astype(np.float64) + lse) * (tot * p + t_a)
    g_y = x[rows, y]
    if off:
        x -= off
    x[rows, y] = g_y - t_lab
    x[rows, a] = (t_rest - t_a * r) / (1 + r)
    if sg_out is None:
        return value, x
    return value, x, sv, sg


def _softmax_rows(x: np.ndarray, _second, call: Call, sg_out: np.ndarray | None) -> tuple:
    nan_rows = np.isnan(x).any(axis=1)
    xa = np.abs(x) if sg_out is not None else None
    s = _shift(x)
    e, r, big_l = _exp_parts(s)
    p = e / (1 + r)[:, None]
    p[nan_rows] = np.nan
    grad = np.zeros_like(p)  # softmax sums to one
    grad[np.isnan(p).any(axis=1)] = np.nan  # also all logits -inf: 0/0, the function is undefined there
    if sg_out is None:
        return p, grad
    a = _abs_logit_scale(xa, s, big_l)
    sv = sum_factor(x.shape[1]) * p.astype(np.float64) * a
    return p, grad, finite_where(sv, p), finite_where(sv, grad)


def _abs_logit_scale(xa: np.ndarray, s: _Softmax, big_l: np.ndarray) -> np.ndarray:
    """1 + |x_c| + |lse(x)| per element (shifted values in rows with +inf logits; -inf counted as 0)."""
    lse = np.abs(np.where(np.isfinite(s.m), s.m, 0) + big_l).astype(np.float64)
    return 1 + np.where(np.isfinite(xa), xa, 0).astype(np.float64) + lse[:, None]


def _log_softmax_rows(x: np.ndarray, _second, call: Call, sg_out: np.ndarray | None) -> tuple:
    nan_rows = np.isnan(x).any(axis=1)
    xa = np.abs(x) if sg_out is not None else None
    s = _shift(x)
    z = s.z.copy()
    e, r, big_l = _exp_parts(s)
    value = z - big_l[:, None]
    c = x.shape[1]
    p = e / (1 + r)[:, None]
    grad = 1 - c * p
    value[nan_rows] = np.nan
    grad[nan_rows] = np.nan
    if sg_out is None:
        return value, grad
    a = _abs_logit_scale(xa, s, big_l)
    f = sum_factor(c)
    return value, grad, finite_where(f * a, value), finite_where(1 + f * c * p.astype(np.float64) * a, grad)


def _softmax(call: Call, scales: bool) -> Reference:
    return over_rows(call, _softmax_rows, scales, per_sample=False)


def _log_softmax(call: Call, scales: bool) -> Reference:
    return over_rows(call, _log_softmax_rows, scales, per_sample=False)


def _smooth_labels(call: Call, scales: bool) -> Reference:
    def kernel(y, _second, call, sg_out):
        nan = np.isnan(y)
        value = _smoothed(y, call)
        if value is y:
            value = y.copy()
        eps = call.work.type(call.params["label_smoothing"])
        c = y.shape[1]
        slope = 1 - eps
        if call.params["smoothing_denominator"] == "C-1" and c > 1:
            slope = slope - eps / (c - 1)
        grad = np.full_like(value, slope)
        grad[nan] = np.nan
        if sg_out is None:
            return value, grad
        return value, grad, np.abs(value).astype(np.float64) + float(eps), np.ones(grad.shape)

    return over_rows(call, kernel, scales, per_sample=False)



LOSSES: dict[str, Callable[[Call, bool], Reference]] = {
    "softmax_cross_entropy": _softmax_cross_entropy,
    "sparse_softmax_cross_entropy": _sparse_softmax_cross_entropy,
    "smooth_labels": _smooth_labels,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
}
