"""Models of summation order: sums a framework accumulates element by element in the dtype (a class axis
that is not last, Paddle's sums along an axis) or per lane of a SIMD packet (Eigen's full reduction),
where the error model assumes pairwise summation."""

from __future__ import annotations

import numpy as np

from lossconf.known_models.base import CLIP, Inputs, _class_axis, _f64, _log_softmax, _reference, _sum_in_order
from lossconf.known_models.clipping import _clip_64
from lossconf.reference import evaluate, numpy_dtype
from lossconf.reference.probability import clip_bounds


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
    rows = -_sum_in_order(terms, -1, dt)[..., 0].astype(np.float64)  # in class order, in the dtype
    reduction = params.get("reduction", "none")
    value = rows if reduction == "none" else np.sum(rows) / (rows.size if reduction == "mean" else 1)
    return np.asarray(value), grad, s_value, s_grad


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
    total = _sum_in_order(g, -1, dt).astype(np.float64)  # in class order, in the dtype
    with np.errstate(invalid="ignore", over="ignore"):
        p = np.exp(_log_softmax(x, -1))
        model = g.astype(np.float64) - p * total
    return value, np.moveaxis(model, -1, axis), s_value, s_grad


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
    return _reduced_in_lanes(loss, inputs, dtype, variant, 0, ("mean",))  # paddle.sum is another kernel


def _reduction_in_order(loss, inputs: Inputs, dtype, variant) -> tuple:
    """'mean' or 'sum' as XLA's CPU reduce loop forms it: the elementwise losses rounded to the dtype and
    accumulated in order with one accumulator in the dtype (then divided by n for 'mean'); gradient and scales
    the reference's."""
    return _reduced_in_lanes(loss, inputs, dtype, variant, 1, ("mean", "sum"))


def _reduced_in_lanes(loss, inputs: Inputs, dtype, variant, lanes: int, reductions: tuple[str, ...]) -> tuple:
    """The elementwise losses in the dtype, summed in order per lane (``lanes`` of them, 0: a 32-byte packet's),
    the lanes added pairwise (halving), then the scalar tail; 'mean' divides by n in the dtype."""
    first, second, params = inputs
    value, grad, s_value, s_grad = _reference(loss, first, second, params, variant)
    reduction = params.get("reduction")
    if reduction not in reductions or not np.size(first):
        return value, grad, s_value, s_grad
    dt = np.dtype(numpy_dtype(dtype))
    terms = np.ravel(evaluate(loss, first, second, scales=False, **{**params, "reduction": "none"}).value)
    terms = terms.astype(np.float64).astype(dt)
    lanes = lanes or PACKET_BYTES // dt.itemsize
    body = len(terms) // lanes * lanes
    acc = np.cumsum(terms[:body].reshape(-1, lanes), axis=0, dtype=dt)[-1] if body else np.zeros(lanes, dt)
    while len(acc) > 1:  # predux: halves added lane-wise
        acc = (acc[: len(acc) // 2] + acc[len(acc) // 2:]).astype(dt)
    total = np.cumsum(np.concatenate([acc, terms[body:]]), dtype=dt)[-1]
    if reduction == "mean":
        total = total / dt.type(terms.size)
    return np.asarray(total, dtype=np.float64), grad, s_value, s_grad


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
