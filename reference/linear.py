"""The fused linear cross-entropy reference: cross-entropy of z = h W^T + b, streamed over the vocabulary.

The logits [N, V] are never materialised: the vocabulary is walked in chunks of ``chunk_classes(N)``
classes for all N rows at once, so the memory beyond the inputs and the two gradients is
O(N x chunk) whatever V is.

- pass 1 (value): per chunk z = h W_chunk^T + b_chunk in the working precision, an online
  log-sum-exp (running max m and running sum s of exp(z - m), rescaled when m grows), the weighted sum
  of the logits (label smoothing) and the label's logit;
- pass 2 (gradients): the chunk's logits again, G = (T softmax(z) - w * t) / denominator with
  T = sum_v w_v t_v, then d/dh += G W_chunk and d/dW_chunk = G^T h.

Working precision (``working_dtype``): float64 for float16/bfloat16/float32 inputs, where a product of
two inputs is exact (at most 2 x 24 significant bits) and a logit carries only the rounding of its
D-term sum; np.longdouble for float64 inputs (NumPy has no BLAS for long double: slow, meant for small
cases; ``benchmarks/reference_accuracy.py`` style measurement in ``tests/test_reference_linear.py``).
Inputs must be finite: the fused APIs have no defined limits for inf/NaN hidden states or weights.
"""

from __future__ import annotations

import functools

import ml_dtypes
import numpy as np

from lossconf.reference.drivers import Reference, _reduce, sum_factor
from lossconf.reference.dtypes import UNIT_ROUNDOFF, dtype_name
from lossconf.reference.numpy_ref import Call, _check_params, _float_array
from lossconf.reference.softmax_family import _smoothing_levels

CHUNK_ELEMENTS = 1 << 20  # logits per chunk (8 MiB of float64): large enough for BLAS, small beside W


def accumulation_dtype(dtype) -> np.dtype:
    """Where a correct matmul accumulates: float32 for float16/bfloat16 inputs (every framework's
    mixed precision, e.g. torch's CPU and cuBLAS GEMMs), the input's own dtype otherwise."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype.itemsize == 2 else dtype


def accumulation_ratio(dtype) -> float:
    """u_accumulation / u_dtype: the gamma_n = n u_acc of an n-term product sum in units of u_dtype."""
    return UNIT_ROUNDOFF[dtype_name(accumulation_dtype(dtype))] / UNIT_ROUNDOFF[dtype_name(dtype)]


def chunk_classes(rows: int) -> int:
    """Classes per vocabulary chunk for ``rows`` hidden states."""
    return max(64, CHUNK_ELEMENTS // max(rows, 1))


def check_inputs(loss, first: np.ndarray, second, params: dict) -> np.ndarray:
    """Validate h [N, D], labels [N], linear_weight [V, D], linear_bias [V], weight [V]; returns the labels."""
    if first.ndim != 2:
        raise ValueError(f"first: hidden states of shape [N, D] expected, got shape {first.shape}")
    n, d = first.shape
    w = params.get("linear_weight")
    if w is None:
        raise ValueError("linear_weight: required; expected a float array [V, D] (the projection to V classes)")
    w = params["linear_weight"] = _float_array("linear_weight", w)
    if w.ndim != 2 or w.shape[1] != d or w.shape[0] == 0:
        raise ValueError(f"linear_weight: expected shape [V, {d}] with V >= 1 (D of the hidden states), got {w.shape}")
    v = w.shape[0]
    arrays = {"first": first, "linear_weight": w}
    if params.get("linear_bias") is not None:
        b = params["linear_bias"] = _float_array("linear_bias", params["linear_bias"])
        if b.shape != (v,):
            raise ValueError(f"linear_bias: expected shape ({v},) (one per class), got {b.shape}")
        arrays["linear_bias"] = b
    for name, a in arrays.items():
        if a.dtype != first.dtype:
            raise TypeError(f"{name}: expected the hidden states' dtype {first.dtype}, got {a.dtype}")
        if not np.all(np.isfinite(a.astype(np.float64))):
            raise ValueError(f"{name}: expected finite values (inf/NaN have no defined fused-loss limit)")
    if params.get("weight") is not None:
        cw = params["weight"] = _float_array("weight", params["weight"])
        if cw.shape != (v,) or not np.all(cw.astype(np.float64) >= 0):
            raise ValueError(f"weight: expected non-negative class weights of shape ({v},), got shape {cw.shape}")
    _check_params(loss, first, {**params, "weight": None})
    if second is None:
        raise ValueError("second: linear_cross_entropy needs integer labels [N]; got None")
    labels = np.asarray(second)
    if not np.issubdtype(labels.dtype, np.integer) or labels.shape != (n,):
        raise ValueError(f"second: integer labels of shape ({n},) expected, got {labels.dtype} {labels.shape}")
    ignore = params.get("ignore_index")
    bad = ((labels < 0) | (labels >= v)) & (labels != ignore if ignore is not None else True)
    if bad.any():
        raise ValueError(f"second: labels must be in [0, {v}) or ignore_index={ignore}; got {labels[bad][0]}")
    return labels.astype(np.int64)


def _f64(a: np.ndarray) -> np.ndarray:
    """``a`` as float64 (no copy when it already is: the scales of float32 and half inputs)."""
    return np.asarray(a, np.float64)


def _chunks(v: int, rows: int):
    step = chunk_classes(rows)
    for start in range(0, v, step):
        yield slice(start, min(start + step, v))


class _Problem:
    """The call's arrays in the working precision and the per-row target quantities."""

    def __init__(self, call: Call) -> None:
        wd = call.work
        p = call.params
        self.h = call.first.astype(wd)
        self.w = p["linear_weight"]  # in its own dtype: converted chunk by chunk (no V x D working copy)
        self.work = wd
        self.b = None if p.get("linear_bias") is None else p["linear_bias"].astype(wd)
        self.n, self.d = self.h.shape
        self.v = self.w.shape[0]
        labels = call.second
        ignore = p.get("ignore_index")
        self.kept = labels != ignore if ignore is not None else np.ones(self.n, bool)
        self.y = np.where(self.kept, labels, 0)
        self.on, self.off = _smoothing_levels(call, self.v)
        self.cw = None if p.get("weight") is None else p["weight"].astype(wd)
        w_y = np.ones(self.n, wd) if self.cw is None else self.cw[self.y]
        self.lab = (self.on - self.off) * w_y  # extra target weight at the label: w_y (on - off)
        self.total = self.off * (self.v if self.cw is None else np.sum(self.cw)) + self.lab  # T = sum_v w_v t_v

    def w_chunk(self, sl: slice) -> np.ndarray:
        return self.w[sl].astype(self.work)

    def logits(self, sl: slice, w: np.ndarray) -> np.ndarray:
        z = self.h @ w.T
        if self.b is not None:
            z += self.b[sl]
        return z

    @functools.cached_property
    def abs_h(self) -> np.ndarray:
        return _f64(np.abs(self.h))

    @functools.cached_property
    def norm_h(self) -> np.ndarray:
        return np.sqrt(np.sum(self.abs_h**2, axis=1))

    def accuracy(self, sl: slice, w: np.ndarray) -> np.ndarray:
        """A = ||h|| ||W_v|| + |b_v| (float64) >= sum_d |h_d| |W_vd| + |b_v| (Cauchy-Schwarz): what a computed
        logit's error is relative to; an outer product instead of a third GEMM (looser by <= sqrt(D),
        ~1.6 for random vectors)."""
        a = np.multiply.outer(self.norm_h, np.sqrt(np.sum(_f64(w) ** 2, axis=1)))
        if self.b is not None:
            a += _f64(np.abs(self.b[sl]))
        return a

    def label_in(self, sl: slice) -> tuple[np.ndarray, np.ndarray]:
        """Rows whose label lies in the chunk, and the label's column in the chunk."""
        rows = np.flatnonzero((self.y >= sl.start) & (self.y < sl.stop))
        return rows, self.y[rows] - sl.start

    def class_weights(self, sl: slice, like: np.ndarray) -> np.ndarray:
        return np.ones(sl.stop - sl.start, like.dtype) if self.cw is None else self.cw[sl]


def linear_cross_entropy(call: Call, scales: bool) -> Reference:
    """Value, d/dh (``grad``), d/dW (``grads["grad_linear_weight"]``) and their scales, streamed over V."""
    q = _Problem(call)
    wd, n = call.work, q.n
    m = np.full(n, -np.inf, wd)
    s = np.zeros(n, wd)
    swz = np.zeros(n, wd)  # sum_v w_v z_v
    z_y = np.zeros(n, wd)
    acc_p = np.zeros(n)  # sum_v exp(z_v - m) A_v, rescaled with s
    for sl in _chunks(q.v, n):
        z = q.logits(sl, q.w_chunk(sl))
        m_new = np.maximum(m, np.max(z, axis=1))
        rescale = np.exp(m - m_new)
        e = np.exp(z - m_new[:, None])
        s = s * rescale + np.sum(e, axis=1)
        if scales:
            acc_p = acc_p * _f64(rescale) + np.sum(_f64(e) * q.accuracy(sl, q.w_chunk(sl)), axis=1)
        m = m_new
        swz += z @ q.class_weights(sl, z)
        rows, cols = q.label_in(sl)
        z_y[rows] = z[rows, cols]
    lse = m + np.log(s)
    value = q.total * lse - q.off * swz - q.lab * z_y
    value[~q.kept] = 0
    denom = _denominator(call, q)
    d = denom if call.reduction == "mean" else wd.type(1)
    coef = np.where(q.kept, q.total / d, 0).astype(wd)  # T / denominator, 0 for ignored rows
    off_rows = np.where(q.kept, q.off / d, 0).astype(wd)
    lab = np.where(q.kept, q.lab / d, 0).astype(wd)
    dh = np.zeros((n, q.d), wd)
    dw = np.empty((q.v, q.d), wd)
    if scales:
        sv = np.zeros(n)
        sdh = np.zeros((n, q.d))
        sdw = np.zeros((q.v, q.d))
        p_acc = (acc_p / _f64(s))[:, None]  # sum_c p_c A_c
        lse64 = np.abs(_f64(lse))[:, None]
        f = sum_factor(q.v)
        r = accumulation_ratio(call.first.dtype)
        d_acc = q.d * r  # gamma_D / u_dtype
        # an entry of G below the dtype's smallest normal number may underflow (flush-to-zero on XLA/TF CPU):
        # off by up to that number, times |W| (|h|) in the products
        dt = call.first.dtype
        under = float(ml_dtypes.finfo(dt).smallest_normal) / UNIT_ROUNDOFF[dtype_name(dt)]
        sdw += under * np.sum(q.abs_h, axis=0)
    for sl in _chunks(q.v, n):
        w = q.w_chunk(sl)
        z = q.logits(sl, w)
        p = np.exp(z - lse[:, None])
        cw = q.class_weights(sl, z)
        g = coef[:, None] * p - off_rows[:, None] * cw  # T p - w t (off the label), / denominator
        rows, cols = q.label_in(sl)
        g[rows, cols] -= lab[rows]
        dh += g @ w
        dw[sl] = g.T @ q.h
        if scales:
            wt = _f64(np.abs(off_rows[:, None] * cw))  # |w_v t_v| / denominator
            wt[rows, cols] += _f64(np.abs(lab[rows]))
            tp = _f64(np.abs(coef[:, None] * p))  # |T| p / denominator
            abs_w = _f64(np.abs(w))
            a = q.accuracy(sl, w)
            size = 1 + _f64(np.abs(z)) + lse64
            sv += np.sum(f * wt * size + d_acc * (tp + wt) * a, axis=1)
            sg = f * (tp + wt) * size + d_acc * tp * (a + p_acc)
            ag = _f64(np.abs(g))  # G rounded to the dtype (1) and summed over V or N rows
            sdh += ((1 + q.v * r) * ag + sg) @ abs_w + under * np.sum(abs_w, axis=0)
            sdw[sl] += ((1 + n * r) * ag + sg).T @ q.abs_h
    if scales and call.reduction == "mean":
        sv *= float(d)  # the value scale is per sample (undivided); _reduce divides the sum
    if not scales:
        sv = sdh = sdw = None
    else:
        sv[~q.kept] = 0
    ref = _reduce(call, value, dh, sv, sdh, d)
    if call.reduction == "mean" and not q.kept.any() and call.params["all_ignored"] == "zero":
        ref.value = np.asarray(0, wd)
    ref.grads["grad_linear_weight"] = (dw, sdw)
    return ref


def _denominator(call: Call, q: _Problem):
    """The mean's denominator: the summed class weights of the kept labels (their count by variant)."""
    if call.params["mean_denominator"] == "count" or q.cw is None:
        return call.work.type(np.count_nonzero(q.kept))
    return np.sum(q.cw[q.y[q.kept]], dtype=call.work)
