"""The fused linear cross-entropy reference: cross-entropy of z = h W^T + b, streamed over the vocabulary.

The logits [N, V] are never materialised: the vocabulary is walked in chunks of ``chunk_classes(N)``
classes for all N rows at once, so the memory beyond the inputs and the two gradients is
O(N x chunk) whatever V is, plus at most ``LOGITS_CACHE_BYTES`` of logits kept from pass 1.

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

Cost (``benchmarks/scale.py``): three float64 BLAS products per call (logits, G W, G^T h) plus the
logits of the chunks beyond the first ``LOGITS_CACHE_BYTES`` recomputed in pass 2 (the same numbers), and
two float32 products for the gradient scales. Pass 2 computes G in place of the softmax and writes the
products into the gradients' rows, so a chunk's temporaries are a few [N, chunk] arrays (at 256 x 256 x
32768 float32 the peak beyond inputs and outputs is 47 MiB; torch's F.linear_cross_entropy needs 82 MiB).
The scales are magnitudes, so float32 (24 bits, gamma_V ~ V 2^-24 on sums of
non-negative terms) changes them by < 2e-6 relative, far inside what kappa absorbs; the truths
themselves never leave float64/long double. A = ||h|| ||W|| + |b| is rank one plus a bias, so its sums
over v are matrix-vector products and it is never formed as [N, V].
"""

from __future__ import annotations

import functools
import os

import ml_dtypes
import numpy as np

from lossconf.reference.drivers import Reference, _reduce, sum_factor
from lossconf.reference.dtypes import UNIT_ROUNDOFF, dtype_name
from lossconf.reference.numpy_ref import Call, _check_params, _float_array
from lossconf.reference.softmax_family import _smoothing_levels

# logits per chunk (2 MiB of float64): BLAS runs as fast as with 4x larger chunks (256 x 256 x 32768 and
# 512 x 1024 x 16384, benchmarks/scale.py), and a dozen chunk temporaries stay far below the logits' size
CHUNK_ELEMENTS = 1 << 18
LOGITS_CACHE_BYTES = 32 << 20  # pass 1 keeps its first chunks' logits for pass 2 up to this (a GEMM saved each)


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
        with np.errstate(invalid="ignore"):  # NaN and +-inf reach the min or the max: no [V, D] temporary
            finite = a.size == 0 or bool(np.isfinite(np.min(a)) and np.isfinite(np.max(a)))
        if not finite:
            raise ValueError(f"{name}: expected finite values (inf/NaN have no defined fused-loss limit)")
    if params.get("weight") is not None:
        cw = params["weight"] = _float_array("weight", params["weight"])
        if cw.shape != (v,) or not np.all(cw >= 0):
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
    """``a`` as float64 (no copy when it already is)."""
    return np.asarray(a, np.float64)


def _chunks(v: int, rows: int) -> list[slice]:
    step = chunk_classes(rows)
    return [slice(start, min(start + step, v)) for start in range(0, v, step)]


def scale_dtype(first: np.ndarray, largest: float) -> np.dtype:
    """Where the gradient scales are computed: float32 for float16/bfloat16/float32 inputs (a scale is a
    magnitude: float32's 24 bits and a gamma_V of ~V 2^-24 on sums of non-negative terms are plenty, and
    float32 GEMMs cost half), float64 for float64 inputs or when an entry could come near float32's
    range (``largest``: an upper estimate of any scale entry)."""
    small = first.dtype.itemsize <= 4 and largest < 1e36
    return np.dtype(np.float32 if small else np.float64)


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
        self.steps = _chunks(self.v, self.n)
        # the logits of pass 1's first chunks, kept for pass 2 up to LOGITS_CACHE_BYTES (a GEMM saved per
        # chunk); pass 2 takes each back for its last use, so the cache shrinks as it goes
        self.kept_logits: list[np.ndarray | None] = []
        self.kept_bytes = 0

    def w_chunk(self, sl: slice) -> np.ndarray:
        return self.w[sl].astype(self.work)

    def logits(self, i: int, w: np.ndarray) -> np.ndarray:
        """Chunk ``i``'s logits h W_chunk^T + b_chunk; pass 2 gets pass 1's when they were kept (handed over:
        it may overwrite them, it is their last use), the same numbers recomputed otherwise."""
        if i < len(self.kept_logits) and self.kept_logits[i] is not None:
            z, self.kept_logits[i] = self.kept_logits[i], None
            return z
        z = self.h @ w.T
        if self.b is not None:
            z += self.b[self.steps[i]]
        if i == len(self.kept_logits) and self.kept_bytes + z.nbytes <= LOGITS_CACHE_BYTES:
            self.kept_logits.append(z)
            self.kept_bytes += z.nbytes
        return z

    def label_in(self, sl: slice) -> tuple[np.ndarray, np.ndarray]:
        """Rows whose label lies in the chunk, and the label's column in the chunk."""
        rows = np.flatnonzero((self.y >= sl.start) & (self.y < sl.stop))
        return rows, self.y[rows] - sl.start

    def class_weights(self, sl: slice, like: np.ndarray) -> np.ndarray:
        return np.ones(sl.stop - sl.start, like.dtype) if self.cw is None else self.cw[sl]


class _Accuracy:
    """A_iv = ||h_i|| ||W_v|| + |b_v| (float64) >= sum_d |h_d| |W_vd| + |b_v| (Cauchy-Schwarz): what a
    computed logit's error is relative to. Rank one plus a bias, so it is never formed as an [N, V] array:
    sum_v e_iv A_iv is two matrix-vector products."""

    def __init__(self, q: _Problem) -> None:
        self.norm_h = np.sqrt(np.einsum("nd,nd->n", _f64(q.h), _f64(q.h)))
        self.norm_w = np.empty(q.v)  # filled chunk by chunk in pass 1
        self.abs_b = None if q.b is None else np.abs(_f64(q.b))

    def fill(self, sl: slice, w: np.ndarray) -> None:
        w = _f64(w)
        self.norm_w[sl] = np.sqrt(np.einsum("vd,vd->v", w, w))

    def weighted(self, e: np.ndarray, sl: slice) -> np.ndarray:
        """sum_v e_iv A_iv over the chunk ``sl`` (e >= 0)."""
        e = _f64(e)
        out = self.norm_h * (e @ self.norm_w[sl])
        return out if self.abs_b is None else out + e @ self.abs_b[sl]

    def at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """A_iv at (rows, cols)."""
        out = self.norm_h[rows] * self.norm_w[cols]
        return out if self.abs_b is None else out + self.abs_b[cols]

    def largest(self) -> float:
        return float(np.max(self.norm_h, initial=0) * np.max(self.norm_w, initial=0)
                     + (0 if self.abs_b is None else np.max(self.abs_b, initial=0)))


@functools.cache
def _blas():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def blas_threads() -> int:
    """BLAS threads for the reference's products: half the cores this process may use, at least one. The
    framework workers run beside the truths, and OpenBLAS threads that outnumber the free cores spin
    (``benchmarks/scale.py``, 256 x 256 x 32768 on 2 loaded cores: 0.39 s of CPU on one thread, 1.1-2.6 s on two)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // 2)


def linear_cross_entropy(call: Call, scales: bool) -> Reference:
    """Value, d/dh (``grad``), d/dW (``grads["grad_linear_weight"]``) and their scales, streamed over V."""
    with _blas().limit(limits=blas_threads(), user_api="blas"):
        return _streamed(call, scales)


def _streamed(call: Call, scales: bool) -> Reference:
    q = _Problem(call)
    wd, n = call.work, q.n
    acc = _Accuracy(q) if scales else None
    smoothing = q.off != 0
    m = np.full(n, -np.inf, wd)
    s = np.zeros(n, wd)
    swz = np.zeros(n, wd)  # sum_v w_v z_v (label smoothing only)
    z_y = np.zeros(n, wd)
    acc_e = np.zeros(n)  # sum_v exp(z_v - m) A_v, rescaled with s
    abs_wz = np.zeros(n)  # sum_v |w_v| |z_v| (label smoothing only)
    for i, sl in enumerate(q.steps):  # pass 1: online log-sum-exp
        w = q.w_chunk(sl)
        z = q.logits(i, w)
        m_new = np.maximum(m, np.max(z, axis=1))
        rescale = np.exp(m - m_new)
        e = z - m_new[:, None]
        np.exp(e, out=e)
        s = s * rescale + np.sum(e, axis=1)
        m = m_new
        if scales:
            acc.fill(sl, w)
            acc_e = acc_e * _f64(rescale) + acc.weighted(e, sl)
        if smoothing:
            cw = q.class_weights(sl, z)
            swz += z @ cw
            if scales:
                abs_wz += _f64(np.abs(z)) @ _f64(np.abs(cw))
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
    sc = _Scales(call, q, acc, acc_e / _f64(s), lse, z_y, (coef, off_rows, lab)) if scales else None
    for i, sl in enumerate(q.steps):  # pass 2: G and the two products
        w = q.w_chunk(sl)
        z = q.logits(i, w)
        rows, cols = q.label_in(sl)
        abs_z = sc.abs_logits(z) if scales else None  # before z becomes p in place
        p = np.subtract(z, lse[:, None], out=z)
        np.exp(p, out=p)
        t = sc.probability_terms(sl, abs_z, p, rows, cols) if scales else None  # before p becomes G in place
        g = np.multiply(p, coef[:, None], out=p)
        if smoothing:
            g -= off_rows[:, None] * q.class_weights(sl, z)  # T p - w t (off the label), / denominator
        g[rows, cols] -= lab[rows]
        dh += g @ w
        np.matmul(g.T, q.h, out=dw[sl])
        if scales:
            sc.add_chunk(sl, t, g, abs_z)
    if scales:
        ref = _reduce(call, value, dh, sc.value(abs_wz), sc.finish_dh(), d)
    else:
        ref = _reduce(call, value, dh, None, None, d)
    if call.reduction == "mean" and not q.kept.any() and call.params["all_ignored"] == "zero":
        ref.value = np.asarray(0, wd)
    ref.grads["grad_linear_weight"] = (dw, sc.sdw if scales else None)
    return ref


class _Scales:
    """The error-model scales (catalog): of the value per sample (undivided: ``_reduce`` divides the mean),
    and of the two gradients, ((1 + V r) |G| + g) |W| and ((1 + N r) |G| + g)^T |h|, two GEMMs per chunk
    in ``scale_dtype`` with g_iv = f (|T| p_iv + |w_v t_iv|)(1 + |z_iv| + |lse_i|) + D r |T| p_iv (A_iv +
    sum_c p_ic A_ic), f = 1 + log2 V, built without materialising A."""

    def __init__(self, call: Call, q: _Problem, acc: _Accuracy, p_acc: np.ndarray, lse, z_y, coefs) -> None:
        self.q, self.acc, self.p_acc = q, acc, p_acc
        self.f = sum_factor(q.v)
        r = accumulation_ratio(call.first.dtype)
        self.d_acc = q.d * r  # gamma_D / u_dtype
        self.c_dh, self.c_dw = 1 + q.v * r, 1 + q.n * r  # G rounded to the dtype, then gamma_V / gamma_N
        abs_lse = np.abs(_f64(lse))
        self.abs_lse, self.size_y = abs_lse, 1 + np.abs(_f64(z_y)) + abs_lse  # 1 + |z| + |lse| at the label
        self.coef, self.off, self.lab = (np.abs(_f64(c)) for c in coefs)
        cw_max = 1.0 if q.cw is None else float(np.max(np.abs(_f64(q.cw)), initial=0))
        c_max = float(np.max(self.coef, initial=0) + np.max(self.off, initial=0) * cw_max
                      + np.max(self.lab, initial=0))
        a_max, big = acc.largest(), max(q.v, q.n)
        x_max = max(float(np.max(np.abs(_f64(q.h)), initial=0)),  # no |W| copy of a [V, D] weight:
                    float(np.max(q.w, initial=0)), -float(np.min(q.w, initial=0)))
        bracket = 1 + big * r + self.f * (2 + 2 * a_max + np.log(q.v)) + 2 * self.d_acc * a_max
        largest = 2 * big * x_max * c_max * bracket
        sd = self.dtype = scale_dtype(call.first, largest)
        # an entry of G below the dtype's smallest normal number may underflow (flush-to-zero on XLA/TF CPU):
        # off by up to that number, times |W| (|h|) in the products
        dt = call.first.dtype
        self.under = float(ml_dtypes.finfo(dt).smallest_normal) / UNIT_ROUNDOFF[dtype_name(dt)]
        self.abs_h = np.abs(call.first).astype(sd)
        self.sdh = np.zeros((q.n, q.d), sd)
        self.sdw = np.empty((q.v, q.d), sd)  # each chunk's rows: their product, then under_h
        self.under_h = (self.under * np.sum(self.abs_h, axis=0, dtype=np.float64)).astype(sd)
        self.sum_abs_w = np.zeros(q.d)
        # the bracket of |T| p_iv: f (1 + |lse_i|) + D r (sum_c p_ic A_ic) + f |z_iv| + D r A_iv
        # the bracket of f |T| p_iv, over f: |z_iv| + [(1 + |lse_i|) + D r (sum_c p_ic A_ic) / f] + (D r / f) A_iv,
        # its rank-two part (A_iv = ||h_i|| ||W_v|| + |b_v|) one small product: rows [n, k] @ cols [k, chunk]
        row_const = (1 + abs_lse) + self.d_acc * p_acc / self.f
        parts = [row_const, self.d_acc / self.f * acc.norm_h] + ([] if acc.abs_b is None else [np.ones(q.n)])
        self.rank_rows = np.stack(parts, axis=1).astype(sd)
        self.f_coef = (self.f * self.coef).astype(sd)[:, None]

    def abs_logits(self, z: np.ndarray) -> np.ndarray:
        out = np.empty(z.shape, self.dtype)
        return np.abs(z, out=out)

    def _rank_cols(self, sl: slice) -> np.ndarray:
        cols = [np.ones(sl.stop - sl.start), self.acc.norm_w[sl]]
        if self.acc.abs_b is not None:
            cols.append(self.d_acc / self.f * self.acc.abs_b[sl])
        return np.stack(cols).astype(self.dtype)

    def probability_terms(self, sl: slice, abs_z: np.ndarray, p: np.ndarray, rows, cols) -> np.ndarray:
        """Chunk ``sl``'s g_iv of the class docstring, from the softmax p (abs_z is overwritten)."""
        q, sd, f = self.q, self.dtype, self.f
        t = np.matmul(self.rank_rows, self._rank_cols(sl))
        t += abs_z
        if q.off != 0:  # f |w_v t_v| (1 + |z| + |lse|) off the label, before t is scaled by p
            cw = np.abs(_f64(q.class_weights(sl, p))).astype(sd)
            np.add(abs_z, (1 + self.abs_lse).astype(sd)[:, None], out=abs_z)
            abs_z *= (f * self.off).astype(sd)[:, None]
            abs_z *= cw
        np.multiply(t, p, out=t)
        t *= self.f_coef
        if q.off != 0:
            t += abs_z
        t[rows, cols] += (f * self.lab[rows] * self.size_y[rows]).astype(sd)  # f |w_y t_y| (1 + |z_y| + |lse|)
        return t

    def add_chunk(self, sl: slice, t: np.ndarray, g: np.ndarray, buffer: np.ndarray) -> None:
        """Add chunk ``sl``'s share to the gradient scales: t from ``probability_terms``, G, and a spent
        [N, chunk] array of the scale dtype to overwrite."""
        sd, q = self.dtype, self.q
        ag = np.abs(g, out=buffer)
        abs_w = np.abs(q.w[sl]).astype(sd, copy=False)
        self.sum_abs_w += np.sum(abs_w, axis=0, dtype=np.float64)
        both = np.multiply(ag, sd.type(self.c_dh))
        both += t
        self.sdh += both @ abs_w
        np.multiply(ag, sd.type(self.c_dw), out=both)
        both += t
        block = np.matmul(both.T, self.abs_h, out=self.sdw[sl])
        block += self.under_h

    def finish_dh(self) -> np.ndarray:
        self.sdh += (self.under * self.sum_abs_w).astype(self.dtype)
        return self.sdh

    def value(self, abs_wz: np.ndarray) -> np.ndarray:
        """Per sample, undivided: sum_v [f |w_v t_v| (1 + |z_v| + |lse|) + D r (|T| p_v + |w_v t_v|) A_v], each
        sum over v in closed form (|w_v t_v| = |off| |w_v| + |lab| at the label)."""
        q, acc, f, kept = self.q, self.acc, self.f, self.q.kept
        lab = np.where(kept, np.abs(_f64(q.lab)), 0)
        total = np.where(kept, np.abs(_f64(q.total)), 0)
        sv = f * lab * self.size_y + self.d_acc * (total * self.p_acc + lab * acc.at(np.arange(q.n), q.y))
        if q.off != 0:
            cw = np.ones(q.v) if q.cw is None else np.abs(_f64(q.cw))
            cw_a = acc.norm_h * (cw @ acc.norm_w) + (0 if acc.abs_b is None else cw @ acc.abs_b)
            off = abs(float(q.off))
            sv += np.where(kept, off * (f * (np.sum(cw) * (1 + self.abs_lse) + abs_wz) + self.d_acc * cw_a), 0)
        return sv


def _denominator(call: Call, q: _Problem):
    """The mean's denominator: the summed class weights of the kept labels (their count by variant)."""
    if call.params["mean_denominator"] == "count" or q.cw is None:
        return call.work.type(np.count_nonzero(q.kept))
    return np.sum(q.cw[q.y[q.kept]], dtype=call.work)
