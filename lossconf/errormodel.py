"""The error model: how far from the truth a result in a given dtype may be.

For every element of a result (loss value or gradient):

    error = |got - truth|
    bound = 0.5 ulp_dtype(truth) + kappa * (u_dtype * S(x) + smallest_subnormal_dtype)

- ``truth`` is the reference's value computed from the *cast* inputs in higher precision, so input
  rounding is never counted as error;
- ``0.5 ulp`` allows the final rounding to the dtype (a correctly rounded result always passes);
- ``u`` is the unit roundoff of the dtype (2^-11 float16, 2^-8 bfloat16, 2^-24 float32, 2^-53 float64);
- ``S(x)`` is a magnitude scale of the computation, per loss (``lossconf.reference.magnitudes``; the
  catalog's ``scale`` string states it): the sizes of the quantities a correct float implementation
  combines, so that cancellation (e.g. logsumexp minus the target logit) is allowed for;
- ``kappa`` is a small constant per loss and quantity, calibrated once by running a straightforward
  correct implementation in each dtype (``benchmarks/calibrate_kappa.py``, stored in ``kappa.json``);
- an intermediate that underflows into the subnormal range loses relative accuracy, so the absolute
  part of the bound is ``kappa`` subnormal spacings (negligible for any normal-range result).

Non-finite values must match exactly: where the truth rounded to the dtype is NaN or +-inf, the
result must be the same; a non-finite result where the truth is finite has infinite error.
A check passes when ``ratio = max(error / bound) <= 1``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import ml_dtypes
import numpy as np

from lossconf.reference.dtypes import UNIT_ROUNDOFF, numpy_dtype


@dataclass(frozen=True)
class Comparison:
    """Worst element of one result against its truth."""

    ratio: float  # max error/bound (inf for a non-finite mismatch, 0 for an exact match)
    error: float  # |got - truth| at the worst element
    ulps: float  # error in ulps of the dtype at the worst element
    bound: float  # bound at the worst element
    scale: float  # S(x) at the worst element
    index: tuple[int, ...] | None  # where the worst element is (None for empty results)
    nonfinite_mismatch: str | None  # description of the first non-finite mismatch, if any
    truth: float | None = None  # the truth at the worst element (in float64)
    got: float | None = None  # the result at the worst element

    @property
    def ok(self) -> bool:
        return self.nonfinite_mismatch is None and self.ratio <= 1.0


@functools.cache
def finfo(dtype: str) -> ml_dtypes.finfo:
    """Machine limits of a dtype name (ml_dtypes.finfo also knows bfloat16, unlike np.finfo)."""
    return ml_dtypes.finfo(numpy_dtype(dtype))


def ulp(values: np.ndarray, dtype: str) -> np.ndarray:
    """Unit in the last place of ``values`` rounded to ``dtype``: 2^(e - p) for |x| in [2^e, 2^(e+1))."""
    info = finfo(dtype)
    with np.errstate(over="ignore"):  # values beyond the dtype's range round to inf, then clip to max
        rounded = np.abs(np.asarray(values, dtype=np.float64).astype(numpy_dtype(dtype)).astype(np.float64))
    # frexp: x = m 2^k with m in [0.5, 1), so e = k - 1 exactly (log2 rounds up just below a power of 2)
    exponent = np.frexp(np.minimum(rounded, float(info.max)))[1] - 1
    exponent = np.maximum(np.where(rounded > 0, exponent, info.minexp), info.minexp)
    return np.ldexp(1.0, exponent - info.nmant)


def bound(truth: np.ndarray, scale: np.ndarray, dtype: str, kappa: float, flush: bool = False,
          ulps: np.ndarray | None = None) -> np.ndarray:
    """Allowed error per element: 0.5 ulp_dtype(truth) + kappa * (u_dtype * S + subnormal spacing),
    plus the smallest normal number when the implementation flushes subnormals to zero (``ulps``: the
    truth's ulp when the caller has it already)."""
    finite = np.where(np.isfinite(truth), truth, 0.0)
    info = finfo(dtype)
    absolute = float(info.smallest_normal) if flush else 0.0
    return (0.5 * (ulp(finite, dtype) if ulps is None else ulps) + absolute
            + kappa * (UNIT_ROUNDOFF[dtype] * np.asarray(scale, dtype=np.float64) + float(info.smallest_subnormal)))


def compare(
    got: np.ndarray, truth: np.ndarray, scale: np.ndarray, dtype: str, kappa: float, flush: bool = False
) -> Comparison:
    """Compare a framework result with the truth under the error model (shapes must already match);
    ``flush`` allows flush-to-zero arithmetic (the ``flush_subnormals`` variant)."""
    return compare_rows(got, truth, scale, dtype, kappa, [got_shape_rows(got)], flush)[0]


def got_shape_rows(got: np.ndarray) -> int:
    """The number of rows (axis 0) of a result; a 0-d result is one row."""
    return np.asarray(got).shape[0] if np.ndim(got) else 1


CHUNK_ELEMENTS = 1 << 21  # larger results are judged in row chunks: a dozen temporaries each, not GiBs


def compare_rows(
    got: np.ndarray, truth: np.ndarray, scale: np.ndarray, dtype: str, kappa: float, rows: list[int],
    flush: bool = False,
) -> list[Comparison]:
    """``compare`` for several results stacked along axis 0 (``rows`` each): one vectorized pass, then
    the worst element of each block. This is how a batched framework call is judged cheaply. A large
    result is judged in chunks of rows, so the comparison's temporaries stay small."""
    got, truth = np.asarray(got), np.asarray(truth)
    scale = np.asarray(scale)  # float32 scales (linear_cross_entropy's) become float64 chunk by chunk in bound()
    per_row = max(1, math.prod(got.shape[1:]))
    step = max(1, CHUNK_ELEMENTS // per_row)
    with np.errstate(all="ignore"):
        if got.ndim == 0 or got.size <= CHUNK_ELEMENTS:
            e = _elementwise(got, truth, scale, dtype, kappa, flush)
            out, start = [], 0
            for n in rows:
                out.append(_worst(e, slice(start, start + n) if e.ratio.ndim else ()))
                start += n
            return out
        rowwise_scale = scale.ndim == truth.ndim and scale.shape[0] == truth.shape[0] and scale.shape[0] > 1
        out, start = [], 0
        for n in rows:
            parts = []
            for a in range(start, start + n, step):
                b = min(a + step, start + n)
                e = _elementwise(got[a:b], truth[a:b], scale[a:b] if rowwise_scale else scale, dtype, kappa, flush)
                parts.append(_worst(e, slice(0, b - a), row_offset=a - start))
            out.append(_combine(parts))
            start += n
        return out


def _combine(parts: list[Comparison]) -> Comparison:
    """The worst of a block judged in chunks: the largest ratio (the first on ties), the first mismatch."""
    worst = parts[0]
    for p in parts[1:]:
        if p.ratio > worst.ratio:
            worst = p
    mismatch = next((p.nonfinite_mismatch for p in parts if p.nonfinite_mismatch), None)
    return replace(worst, nonfinite_mismatch=mismatch)


@dataclass(frozen=True)
class _Elementwise:
    truth: np.ndarray
    expected: np.ndarray | None  # the truth rounded to the dtype (None where no non-finite mismatch can occur)
    got: np.ndarray
    err: np.ndarray
    bound: np.ndarray
    ratio: np.ndarray
    ulp: np.ndarray
    scale: np.ndarray
    mismatch: np.ndarray


def _elementwise(got, truth, scale, dtype: str, kappa: float, flush: bool) -> _Elementwise:
    work = np.longdouble if np.asarray(truth).dtype == np.longdouble else np.float64
    if work is np.float64 and _all_finite(got, truth, dtype):
        return _elementwise_finite(got, truth, scale, dtype, kappa, flush)
    got64 = np.asarray(got).astype(np.float64)
    truth_w = np.asarray(truth).astype(work)
    truth64 = truth_w.astype(np.float64)
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), truth_w.shape)
    expected = truth64.astype(numpy_dtype(dtype)).astype(np.float64)
    nonfinite = ~np.isfinite(expected) | ~np.isfinite(got64)
    mismatch = nonfinite & ~((np.isnan(expected) & np.isnan(got64)) | (expected == got64))
    finite = ~nonfinite
    err = np.zeros(truth_w.shape, dtype=np.float64)
    err[finite] = np.abs(got64[finite].astype(work) - truth_w[finite]).astype(np.float64)
    finite_truth = np.where(finite, truth64, 0.0)
    ulps = ulp(finite_truth, dtype)
    b = bound(finite_truth, scale, dtype, kappa, flush, ulps)
    ratio = np.where(err == 0, 0.0, err / b)
    ratio = np.where(mismatch, np.inf, ratio)
    return _Elementwise(truth64, expected, got64, err, b, ratio, ulps, scale, mismatch)


def _all_finite(got, truth, dtype: str) -> bool:
    """Whether every result is finite and every truth finite and within the dtype's range (so that no
    element can be a non-finite mismatch): two reductions instead of the masks of the general path."""
    top = float(finfo(dtype).max)
    with np.errstate(invalid="ignore"):
        return bool(np.isfinite(got).all()) and bool(np.max(np.abs(truth), initial=0.0) <= top)


def _elementwise_finite(got, truth, scale, dtype: str, kappa: float, flush: bool) -> _Elementwise:
    """``_elementwise`` where ``_all_finite`` holds: the same numbers, a third of the passes over the
    arrays (a [V, D] weight gradient is judged in ~0.1 s instead of ~0.3 s)."""
    got64 = np.asarray(got, dtype=np.float64)
    truth64 = np.asarray(truth, dtype=np.float64)
    err = np.asarray(np.subtract(got64, truth64))  # 0-d stays an array
    np.abs(err, out=err)
    ulps = ulp(truth64, dtype)
    b = bound(truth64, scale, dtype, kappa, flush, ulps)
    with np.errstate(invalid="ignore"):
        ratio = np.asarray(err / b)
    if np.isnan(ratio).any():
        ratio[err == 0] = 0.0
    scale = np.broadcast_to(scale, truth64.shape)  # read at one index by _worst: no float64 copy
    return _Elementwise(truth64, None, got64, err, b, ratio, ulps, scale, np.zeros(truth64.shape, bool))


def _worst(e: _Elementwise, block: slice | tuple, row_offset: int = 0) -> Comparison:
    """The worst element of ``block``; indices are reported relative to the block's first row, plus
    ``row_offset`` (where a chunk starts inside its block)."""
    ratio = e.ratio[block]
    if ratio.size == 0:
        return Comparison(0.0, 0.0, 0.0, 0.0, 0.0, None, None)
    offset = (block.start,) + (0,) * (ratio.ndim - 1) if ratio.ndim else ()
    local = np.unravel_index(int(np.argmax(ratio)), ratio.shape) if ratio.ndim else ()
    worst = tuple(int(i) + o for i, o in zip(local, offset, strict=True))
    message = None
    mismatch = e.mismatch[block]
    if mismatch.any():
        first = tuple(int(i) for i in np.argwhere(mismatch)[0])
        idx = tuple(int(i) + o for i, o in zip(first, offset, strict=True))
        shown = (first[0] + row_offset, *first[1:]) if first else first
        message = f"at {shown}: expected {float(e.expected[idx])!r}, got {float(e.got[idx])!r}"
    bad = bool(e.mismatch[worst])
    ulps = float(e.err[worst] / e.ulp[worst]) if e.ulp[worst] > 0 else 0.0
    return Comparison(
        ratio=float(e.ratio[worst]),
        error=float("inf") if bad else float(e.err[worst]),
        ulps=float("inf") if bad else ulps,
        bound=float(e.bound[worst]),
        scale=float(e.scale[worst]),
        index=tuple(int(i) - o + (row_offset if d == 0 else 0)
                    for d, (i, o) in enumerate(zip(worst, offset, strict=True))),
        nonfinite_mismatch=message,
        truth=float(e.truth[worst]),
        got=float(e.got[worst]),
    )
