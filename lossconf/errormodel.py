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
    with np.errstate(over="ignore"):  # values beyond the dtype's range round to inf, then count as max
        rounded = np.asarray(values, dtype=np.float64).astype(numpy_dtype(dtype))
    return _ulp_of_rounded(rounded, dtype)


def _ulp_of_rounded(rounded: np.ndarray, dtype: str, finite: bool = False) -> np.ndarray:
    """``ulp`` (float64) of values already rounded to ``dtype`` (and held in it): the spacing of the dtype
    at |x| (subnormal spacing at 0), capped at the spacing of the largest binade (max and inf);
    ``finite``: the caller knows there is no NaN (one pass less over a large result)."""
    info = finfo(dtype)
    largest = float(np.ldexp(1.0, info.maxexp - 1 - info.nmant))
    magnitude = np.asarray(np.abs(rounded))  # an array also for 0-d input: written in place below
    with np.errstate(over="ignore", invalid="ignore"):  # spacing(max) overflows to inf
        if not finite:
            np.minimum(magnitude, info.max, out=magnitude)
        spacing = np.asarray(np.spacing(magnitude, out=magnitude), dtype=np.float64)
    if not finite:  # NaN has the smallest spacing, as the exponent of the old frexp form fell back to it
        np.copyto(spacing, float(info.smallest_subnormal), where=np.isnan(spacing))
    return np.minimum(spacing, largest, out=spacing)


def bound(truth: np.ndarray, scale: np.ndarray, dtype: str, kappa: float, flush: bool = False,
          ulps: np.ndarray | None = None) -> np.ndarray:
    """Allowed error per element: 0.5 ulp_dtype(truth) + kappa * (u_dtype * S + subnormal spacing),
    plus the smallest normal number when the implementation flushes subnormals to zero (``ulps``: the
    truth's ulp when the caller has it already)."""
    info = finfo(dtype)
    if ulps is None:
        ulps = ulp(np.where(np.isfinite(truth), truth, 0.0), dtype)
    model = np.multiply(scale, UNIT_ROUNDOFF[dtype], dtype=np.float64)  # in place from here: large results
    model += float(info.smallest_subnormal)
    model *= kappa
    out = np.multiply(ulps, 0.5)
    if flush:
        out += float(info.smallest_normal)
    out += model
    return out


def compare(
    got: np.ndarray, truth: np.ndarray, scale: np.ndarray, dtype: str, kappa: float, flush: bool = False
) -> Comparison:
    """Compare a framework result with the truth under the error model (shapes must already match);
    ``flush`` allows flush-to-zero arithmetic (the ``flush_subnormals`` variant)."""
    return compare_rows(got, truth, scale, dtype, kappa, [got_shape_rows(got)], flush)[0]


def got_shape_rows(got: np.ndarray) -> int:
    """The number of rows (axis 0) of a result; a 0-d result is one row."""
    return np.asarray(got).shape[0] if np.ndim(got) else 1


# A block larger than CHUNK_ELEMENTS is judged in row chunks of about that size: a dozen temporaries
# that stay in cache (2.4x faster than 2M-element chunks on a 4M-element gradient), never GiBs. A batch
# of many small cases is judged in one pass up to ONE_PASS_ELEMENTS (a pass per case costs more).
CHUNK_ELEMENTS = 1 << 16
ONE_PASS_ELEMENTS = 1 << 21


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
        if got.ndim == 0 or got.size <= min(ONE_PASS_ELEMENTS, CHUNK_ELEMENTS * len(rows)):
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
    expected: np.ndarray | None  # None (with mismatch): every result and truth is finite
    got: np.ndarray
    err: np.ndarray
    bound: np.ndarray
    ratio: np.ndarray
    ulp: np.ndarray
    scale: np.ndarray
    mismatch: np.ndarray | None


def _elementwise(got, truth, scale, dtype: str, kappa: float, flush: bool) -> _Elementwise:
    truth = np.asarray(truth)
    got = np.asarray(got)
    work = np.longdouble if truth.dtype == np.longdouble else np.float64
    truth_w = truth.astype(work, copy=False)
    truth64 = truth_w.astype(np.float64, copy=False)
    scale = np.broadcast_to(np.asarray(scale), truth_w.shape)
    in_dtype = truth64.astype(numpy_dtype(dtype), copy=False)  # float64: the truth itself
    if np.isfinite(in_dtype).all() and np.isfinite(got).all():
        # the usual case, in as few passes over a large result as it takes: no masks, no copies
        if work is np.float64:
            err = np.asarray(np.subtract(got, truth64, dtype=np.float64))
            np.abs(err, out=err)
        else:  # float64 results against a long double truth: their difference in long double
            err = np.asarray(np.abs(np.subtract(got, truth_w, dtype=work)).astype(np.float64))
        ulps = _ulp_of_rounded(in_dtype, dtype, finite=True)
        b = bound(truth64, scale, dtype, kappa, flush, ulps)
        ratio = np.divide(err, b, out=err.copy())  # b > 0: kappa times the subnormal spacing at least
        return _Elementwise(truth64, None, got, err, b, ratio, ulps, scale, None)
    got64 = got.astype(np.float64)
    expected = in_dtype.astype(np.float64)
    nonfinite = ~np.isfinite(expected) | ~np.isfinite(got64)
    mismatch = nonfinite & ~((np.isnan(expected) & np.isnan(got64)) | (expected == got64))
    finite = ~nonfinite
    err = np.zeros(truth_w.shape, dtype=np.float64)
    err[finite] = np.abs(got64[finite].astype(work) - truth_w[finite]).astype(np.float64)
    finite_truth = np.where(finite, truth64, 0.0)
    rounded = np.where(finite, in_dtype, in_dtype.dtype.type(0))  # finite_truth rounded to the dtype
    ulps = _ulp_of_rounded(rounded, dtype)
    b = bound(finite_truth, scale, dtype, kappa, flush, ulps)
    ratio = np.divide(err, b, out=np.zeros(err.shape), where=err != 0)
    ratio[mismatch] = np.inf
    return _Elementwise(truth64, expected, got64, err, b, ratio, ulps, scale, mismatch)


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
    mismatch = e.mismatch[block] if e.mismatch is not None else None
    if mismatch is not None and mismatch.any():
        first = tuple(int(i) for i in np.argwhere(mismatch)[0])
        idx = tuple(int(i) + o for i, o in zip(first, offset, strict=True))
        shown = (first[0] + row_offset, *first[1:]) if first else first
        message = f"at {shown}: expected {float(e.expected[idx])!r}, got {float(e.got[idx])!r}"
    bad = e.mismatch is not None and bool(e.mismatch[worst])
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
