"""The NumPy reference: value, closed-form gradient and error-model scales of every catalog loss.

Precision: inputs of float16/bfloat16/float32 are evaluated in float64, float64 inputs in
``np.longdouble`` (80-bit x87 extended on x86-64, IEEE quad on aarch64 Linux; where it is plain float64
float64 inputs raise, see ``working_dtype``; ``benchmarks/reference_accuracy.py`` measures it against
a double-double alternative and against the mpmath oracle). The formulas are arranged so
that no step cancels when the inputs are in their domain:

- softmax family: ``z = x - max(x)``, ``r = sum_{c != argmax} exp(z_c)``, ``log-sum = log1p(r)``;
  the loss is ``sum_c w_c t_c (log1p(r) - z_c)``, a sum of non-negative terms; the gradient at the
  arg-max class is ``(sum_{c != a} w_c t_c - w_a t_a r) / (1 + r)`` instead of ``p_a - t_a``;
- sparse CE: from the labels alone for rows without NaN/inf (no dense one-hot), computed in place in the
  gradient's own output block, so a [4096, 131072] call needs no input-sized temporaries;
- sigmoid CE: ``pw z softplus(-x) + (1 - z) softplus(x)``, softplus via ``max(x,0) + log1p(exp(-|x|))``;
- ``log(1 - p)`` as ``log1p(-p)``.

Non-finite inputs follow the mathematical limit (see ``value_and_grad``). Class losses are evaluated
in row chunks of at most ``CHUNK_ELEMENTS`` working-precision elements, so the memory used besides
the returned arrays stays bounded (a few chunks) whatever the input size.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources

import ml_dtypes
import numpy as np

from lossconf.reference.catalog import REDUCTIONS, Loss, get_loss, get_variant

CHUNK_ELEMENTS = 1 << 18  # per-chunk working set (2 MiB of float64): stays in a core's cache

# Hidden parameters (set by variants, accepted directly too): name -> default.
HIDDEN_DEFAULTS: dict[str, object] = {
    "smoothing_denominator": "C",
    "clip": None,
    "normalize": False,
    "log_min": None,
    "log_offset": None,
    "mean_denominator": "weights",
    "all_ignored": "nan",
    "factor": 1.0,
}
_HIDDEN_CHOICES = {
    "smoothing_denominator": ("C", "C-1"),
    "mean_denominator": ("weights", "count"),
    "all_ignored": ("nan", "zero"),
}


# float64 truths need a wider working precision: x87 extended (63 stored mantissa bits, x86-64) or IEEE
# quad (112, aarch64 Linux); where np.longdouble is plain float64 (52: macOS arm64, Windows) they cannot
# be computed, and the reference says so instead of returning float64-accurate "truths".
MIN_LONGDOUBLE_NMANT = 63


def working_dtype(dtype, longdouble_nmant: int = int(np.finfo(np.longdouble).nmant)) -> np.dtype:
    """float64 for float16/bfloat16/float32 inputs, np.longdouble for float64 inputs.

    ``longdouble_nmant`` is this platform's ``np.finfo(np.longdouble).nmant``; below
    ``MIN_LONGDOUBLE_NMANT`` float64 inputs raise a TypeError that says why.
    """
    dtype = np.dtype(dtype)
    if dtype == np.float64:
        if longdouble_nmant < MIN_LONGDOUBLE_NMANT:
            raise TypeError(
                f"dtype: float64 inputs need a working precision wider than float64, but np.longdouble on this "
                f"platform has {longdouble_nmant} mantissa bits (at least {MIN_LONGDOUBLE_NMANT} needed: x87 "
                "extended on x86-64, IEEE quad on aarch64 Linux); float64 truths are not available here")
        return np.dtype(np.longdouble)
    if dtype in (np.dtype(np.float16), np.dtype(np.float32), np.dtype(ml_dtypes.bfloat16)):
        return np.dtype(np.float64)
    raise TypeError(f"dtype: expected float16, bfloat16, float32 or float64, got {dtype}")


# ---------------------------------------------------------------------------------------------
# Validation: one normalised call record shared by the reference and the oracle
# ---------------------------------------------------------------------------------------------


@dataclass
class Call:
    """A validated call: the loss, its inputs (original dtypes), reduction and every parameter."""

    loss: Loss
    first: np.ndarray
    second: np.ndarray | None
    reduction: str
    params: dict  # catalog params and hidden params, defaults filled in
    work: np.dtype  # working dtype

    @property
    def axis(self) -> int:
        return self.params.get("axis", -1) % max(self.first.ndim, 1)


def hidden_params_of(loss: Loss) -> tuple[str, ...]:
    """Hidden parameters meaningful for ``loss``: those some variant of it overrides."""
    names = {k for v in loss.variants for k in get_variant(v).overrides}
    return tuple(sorted(names))


def prepare(loss_id: str, first, second=None, *, reduction: str = "none", variant: str | None = None,
            **params) -> Call:
    """Validate a call and fill in defaults (ValueError/TypeError naming the bad argument)."""
    loss = get_loss(loss_id)
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: unknown reduction {reduction!r}; expected one of {REDUCTIONS}")
    if reduction not in loss.reductions:
        raise ValueError(f"reduction: {reduction!r} not allowed for {loss_id}; expected one of {loss.reductions}")
    params = dict(params)
    params.pop("reduction", None)
    allowed_hidden = hidden_params_of(loss)
    for name in params:
        if name not in loss.param_names and name not in allowed_hidden:
            expected = sorted(set(loss.param_names) - {"reduction"} | set(allowed_hidden))
            raise ValueError(f"{name}: not a parameter of {loss_id}; expected one of {expected}")
    full = {p.name: p.default for p in loss.params if p.name != "reduction"}
    full.update({k: HIDDEN_DEFAULTS[k] for k in allowed_hidden})
    if variant is not None:
        if variant not in loss.variants:
            get_variant(variant)  # unknown name -> ValueError listing the variants
            raise ValueError(f"variant: {variant!r} is not a variant of {loss_id}; expected one of {loss.variants}")
        for k, v in get_variant(variant).overrides.items():
            if k in params and params[k] != v:
                raise ValueError(f"{k}: {params[k]!r} contradicts variant {variant!r} ({k}={v!r})")
            full[k] = v
    full.update(params)

    first = _float_array("first", first)
    work = working_dtype(first.dtype)
    if loss.grad_params:  # several differentiated inputs (linear_cross_entropy): its own family validates
        from lossconf.reference.linear import check_inputs

        return Call(loss, first, check_inputs(loss, first, second, full), reduction, full, work)
    if loss.classes_axis:
        if first.ndim == 0:
            raise ValueError(f"first: {loss_id} needs a class axis; got a 0-d array")
        axis = full.get("axis", -1)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -first.ndim <= axis < first.ndim:
            raise ValueError(f"axis: expected an integer in [-{first.ndim}, {first.ndim}), got {axis!r}")
        if first.shape[axis] == 0:
            raise ValueError("first: the class axis is empty (C = 0); expected at least one class")
    second = _check_second(loss, first, second, full)
    _check_params(loss, first, full)
    _check_domains(loss, first, second, full)
    return Call(loss, first, second, reduction, full, work)


def _float_array(name: str, a) -> np.ndarray:
    """A float array of one of the four dtypes; plain Python numbers become float64."""
    if not isinstance(a, np.ndarray):
        a = np.asarray(a)
        if np.issubdtype(a.dtype, np.integer) or a.dtype == bool:
            a = a.astype(np.float64)
    if a.dtype == np.dtype(ml_dtypes.bfloat16) or np.issubdtype(a.dtype, np.floating):
        if a.dtype not in (np.float16, np.float32, np.float64, np.dtype(ml_dtypes.bfloat16)):
            raise TypeError(f"{name}: expected float16, bfloat16, float32 or float64, got {a.dtype}")
        return a
    raise TypeError(f"{name}: expected a floating-point array, got dtype {a.dtype}")


def _check_second(loss: Loss, first: np.ndarray, second, params: dict) -> np.ndarray | None:
    if not loss.has_second:
        if second is not None:
            raise ValueError(f"second: {loss.id} takes one input; got a second array")
        return None
    if second is None:
        raise ValueError(f"second: {loss.id} needs {loss.inputs[1].name}; got None")
    if loss.inputs[1].role == "labels":
        second = np.asarray(second)
        if not (np.issubdtype(second.dtype, np.integer)):
            raise TypeError(f"second: labels must be an integer array, got dtype {second.dtype}")
        expected = tuple(np.delete(np.array(first.shape), params["axis"] % first.ndim))
        if second.shape != expected:
            raise ValueError(f"second: labels of shape {expected} expected (first without its class axis), "
                             f"got {second.shape}")
        return second.astype(np.int64)
    second = _float_array("second", second)
    if loss.inputs[1].role == "targets" and loss.id in ("mean_squared_error", "mean_absolute_error",
                                                         "root_mean_squared_error"):
        if not _broadcasts_to(second.shape, first.shape):
            raise ValueError(f"second: shape {second.shape} does not broadcast to predictions {first.shape}")
    elif second.shape != first.shape:
        raise ValueError(f"second: shape {second.shape} expected equal to first's {first.shape}")
    return second


def _check_params(loss: Loss, first: np.ndarray, p: dict) -> None:
    eps = p.get("label_smoothing", 0.0)
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating, np.integer)) or not 0 <= eps <= 1:
        raise ValueError(f"label_smoothing: expected a number in [0, 1], got {eps!r}")
    if p.get("weight") is not None:
        w = _float_array("weight", p["weight"])
        c = first.shape[p["axis"]]
        if w.shape != (c,):
            raise ValueError(f"weight: expected shape ({c},) (one weight per class), got {w.shape}")
        if not np.all(w.astype(np.float64) >= 0):
            raise ValueError("weight: expected non-negative (non-NaN) class weights")
        p["weight"] = w
    if p.get("pos_weight") is not None:
        pw = _float_array("pos_weight", p["pos_weight"])
        if not _broadcasts_to(pw.shape, first.shape):
            raise ValueError(f"pos_weight: shape {pw.shape} does not broadcast to logits {first.shape}")
        if not np.all(pw.astype(np.float64) >= 0):
            raise ValueError("pos_weight: expected non-negative (non-NaN) values")
        p["pos_weight"] = pw
    ii = p.get("ignore_index")
    if ii is not None and (isinstance(ii, bool) or not isinstance(ii, (int, np.integer))):
        raise TypeError(f"ignore_index: expected None or an integer, got {ii!r}")
    if "log_input" in p and not isinstance(p["log_input"], (bool, np.bool_)):
        raise TypeError(f"log_input: expected a bool, got {p['log_input']!r}")
    for name, choices in _HIDDEN_CHOICES.items():
        if name in p and p[name] not in choices:
            raise ValueError(f"{name}: expected one of {choices}, got {p[name]!r}")
    if p.get("clip") is not None and not 0 < p["clip"] < 0.5:
        raise ValueError(f"clip: expected a number in (0, 0.5), got {p['clip']!r}")
    if p.get("clip") is not None and loss.id == "kl_divergence" and p["log_input"]:
        raise ValueError("clip: the clipping variant of kl_divergence needs log_input=False")
    if "factor" in p and not (isinstance(p["factor"], (int, float)) and p["factor"] > 0):
        raise ValueError(f"factor: expected a positive number, got {p['factor']!r}")
    if p.get("log_offset") is not None and not (isinstance(p["log_offset"], (int, float))
                                                and 0 <= p["log_offset"] < 0.5):
        raise ValueError(f"log_offset: expected None or a number in [0, 0.5), got {p['log_offset']!r}")
    if p.get("log_min") is not None and not isinstance(p["log_min"], (int, float)):
        raise TypeError(f"log_min: expected a number, got {p['log_min']!r}")


def _broadcasts_to(shape: tuple, target: tuple) -> bool:
    try:
        return np.broadcast_shapes(shape, target) == target
    except ValueError:
        return False


def _check_domains(loss: Loss, first: np.ndarray, second: np.ndarray | None, p: dict) -> None:
    first_role = loss.inputs[0].role
    if first_role == "probabilities" or (loss.id == "kl_divergence" and not p["log_input"]):
        _in_unit_interval("first", first)
    if second is not None and loss.inputs[1].domain == "values in [0, 1]":
        _in_unit_interval("second", second)
    if second is not None and loss.inputs[1].role == "labels":
        c = first.shape[p["axis"]]
        bad = (second < 0) | (second >= c)
        if p.get("ignore_index") is not None:
            bad &= second != p["ignore_index"]
        if bad.any():
            raise ValueError(f"second: labels must be in [0, {c}) or ignore_index={p.get('ignore_index')}; "
                             f"got {second[bad].flat[0]}")


def _in_unit_interval(name: str, a: np.ndarray) -> None:
    a64 = a.astype(np.float64)
    if np.any((a64 < 0) | (a64 > 1)):
        raise ValueError(f"{name}: probabilities must lie in [0, 1] (NaN allowed); "
                         f"got values in [{np.nanmin(a64)}, {np.nanmax(a64)}]")


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


@dataclass
class Reference:
    """Truth of one call: value, gradient (working dtype) and their error-model scales (float64)."""

    value: np.ndarray
    grad: np.ndarray
    scale_value: np.ndarray | None = None
    scale_grad: np.ndarray | None = None
    grads: dict = field(default_factory=dict)  # further gradients: quantity -> (gradient, its scale)



def _linear(call: Call, scales: bool) -> Reference:
    from lossconf.reference.linear import linear_cross_entropy  # imports this module

    return linear_cross_entropy(call, scales)


def evaluate(loss_id: str, first, second=None, *, reduction: str = "none", variant: str | None = None,
             scales: bool = True, **params) -> Reference:
    """Value, gradient and (when ``scales``) the error-model scales of one call, in one pass."""
    call = prepare(loss_id, first, second, reduction=reduction, variant=variant, **params)
    with np.errstate(all="ignore"):
        return _LOSSES[call.loss.id](call, scales)


def value_and_grad(loss_id: str, first, second=None, *, reduction: str = "none", variant: str | None = None,
                   **params) -> tuple[np.ndarray, np.ndarray]:
    """The loss value and d(sum of value)/d(first), both in ``working_dtype(first.dtype)``.

    Shapes: ``value`` has one entry per sample ("none", class losses), per element ("none",
    elementwise losses) or is 0-d ("mean"/"sum"); ``grad`` has the shape of ``first``.

    Non-finite inputs (the mathematical limit): a NaN in a sample makes that sample's value and
    gradient NaN (an ignored sample stays 0); a ``-inf`` logit with zero target weight contributes 0,
    with positive weight the loss is ``+inf``; ``+inf`` logits with the others finite give a softmax
    spread equally over the ``+inf`` classes; all logits ``-inf`` is NaN; ``0 * log 0 = 0``; a
    probability of exactly 0 or 1 under a non-zero target gives ``+inf`` (finite with the clamp variant,
    and with the clip variants where the clip bound is not 0 or 1 in the dtype: float16 and bfloat16
    round 1 - 1e-7 to 1, see ``clip_bounds``). Mean over nothing (N = 0, or every label ignored) is NaN (0 with
    ``all_ignored="zero"``), sum over nothing is 0. The root-mean-squared error has no gradient at 0
    (NaN). At the kink of |x - y| the gradient is 0. Where the clip/clamp variants cut, the gradient
    is that of the clipped function (0).
    """
    ref = evaluate(loss_id, first, second, reduction=reduction, variant=variant, scales=False, **params)
    return ref.value, ref.grad


def magnitudes(loss_id: str, first, second=None, *, reduction: str = "none", variant: str | None = None,
               **params) -> tuple[np.ndarray, np.ndarray]:
    """Error-model scales (S_value, S_grad) as float64 arrays shaped like the value and the gradient.

    The bound of a result is 0.5 ulp(truth) + kappa * u * S; S is the size of the quantities a correct
    floating-point implementation combines (the catalog's ``scale`` string states it per loss). It is
    finite and >= 0 wherever the truth is finite.
    """
    ref = evaluate(loss_id, first, second, reduction=reduction, variant=variant, scales=True, **params)
    return ref.scale_value, ref.scale_grad


# ---------------------------------------------------------------------------------------------
# Drivers: class-axis rows in chunks, elementwise in flat chunks, reductions
# ---------------------------------------------------------------------------------------------


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


def _sum_factor(n: int) -> float:
    """Summation-length factor 1 + log2(n) of the pairwise-summation error bound."""
    return 1.0 + np.log2(max(n, 1))


# A row kernel maps (x [R, C], second rows, call, sg_out) to value rows ([R] or [R, C]), grad rows
# [R, C] and, when sg_out is not None, their scales (float64). ``x`` is the gradient's own block of
# rows, filled with the input in the working dtype, and ``sg_out`` the gradient scale's block: the
# kernel may compute in them and return them (no copy).
RowKernel = Callable[[np.ndarray, np.ndarray | None, Call, np.ndarray | None], tuple]


def _rowwise(call: Call, kernel: RowKernel, scales: bool, per_sample: bool, denominator=None) -> Reference:
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
        sv = np.asarray(float(np.sum(sv) * _sum_factor(n) / float(d)) if n and d != 0 else 0.0)
    return Reference(out, grad, sv, sg)


def _zero_times(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a * b with 0 * (+-inf) = 0 (the convention 0 log 0 = 0)."""
    out = a * b
    out[(a == 0) & ~np.isnan(b)] = 0
    return out


# ---------------------------------------------------------------------------------------------
# Softmax family
# ---------------------------------------------------------------------------------------------


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
        lin[redo] = -np.sum(_zero_times(t[redo], s.z[redo]), axis=1)
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
    factor = _sum_factor(x.shape[1])
    sv = factor * np.sum(ta * a, axis=1)
    sg = factor * (np.sum(ta, axis=1)[:, None] * p + ta) * a
    return value, grad, _finite_where(sv, value), _finite_where(sg, grad)


def _finite_where(scale: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Scales are only meaningful where the truth is finite; elsewhere report 0 (an overflowed scale under a
    finite truth becomes the largest float64)."""
    big = np.finfo(np.float64).max
    return np.where(np.isfinite(truth) & np.isfinite(scale), scale, np.where(np.isfinite(truth), big, 0.0))


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

    return _rowwise(call, kernel, scales, per_sample=True)


def _sparse_softmax_cross_entropy(call: Call, scales: bool) -> Reference:
    labels = call.second
    kept = _kept(call, labels)
    w = call.params.get("weight")
    if call.params["mean_denominator"] == "count" or w is None:
        denom = call.work.type(np.count_nonzero(kept))
    else:
        denom = np.sum(w.astype(call.work)[labels[kept]], dtype=call.work)
    ref = _rowwise(call, _sparse_rows, scales, per_sample=True, denominator=denom)
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
        f = _sum_factor(c)
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
    sv = _sum_factor(x.shape[1]) * p.astype(np.float64) * a
    return p, grad, _finite_where(sv, p), _finite_where(sv, grad)


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
    f = _sum_factor(c)
    return value, grad, _finite_where(f * a, value), _finite_where(1 + f * c * p.astype(np.float64) * a, grad)


def _softmax(call: Call, scales: bool) -> Reference:
    return _rowwise(call, _softmax_rows, scales, per_sample=False)


def _log_softmax(call: Call, scales: bool) -> Reference:
    return _rowwise(call, _log_softmax_rows, scales, per_sample=False)


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

    return _rowwise(call, kernel, scales, per_sample=False)


# ---------------------------------------------------------------------------------------------
# Probability losses (categorical CE, KL divergence)
# ---------------------------------------------------------------------------------------------


def constant_in_dtype(c: float, dtype) -> float:
    """fl_d(c): a Python constant as a framework holds it in the input's dtype d (exact in float64)."""
    return float(np.asarray(c, np.float64).astype(dtype))


def clip_bounds(clip: float, dtype) -> tuple[float, float]:
    """(lo, hi) = (fl_d(clip), fl_d(1 - lo)): clip bounds computed in the input's dtype d, as Keras does.

    float32: (1.0000000116860974e-07, 0.99999988); float16 and bfloat16: hi = 1 (p = 1 is not clipped).
    """
    lo = constant_in_dtype(clip, dtype)
    return lo, constant_in_dtype(1 - lo, dtype)  # 1 - lo is exact in float64 except for float64's own lo


def _clipped_logs(p: np.ndarray, bounds: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log(p'), log(1 - p') for p' = clip(p, lo, hi), and the mask where the clip is inactive (lo <= p <= hi).

    The bounds are exact in the working precision; a clipped side uses log(lo), log1p(-lo), log1p(hi - 1)
    and log(1 - hi) (hi - 1 is exact by Sterbenz), so nothing cancels.
    """
    log_p, log_1mp = np.log(p), np.log1p(-p)
    if bounds is None:
        return log_p, log_1mp, np.ones(p.shape, bool)
    w = p.dtype.type
    lo, hi = w(bounds[0]), w(bounds[1])
    low, high = p < lo, p > hi
    log_p = np.where(low, np.log(lo), np.where(high, np.log1p(hi - 1), log_p))
    log_1mp = np.where(low, np.log1p(-lo), np.where(high, np.log(1 - hi), log_1mp))
    return log_p, log_1mp, ~(low | high)


def _minus_ratio(t: np.ndarray, q: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """d(-t log q)/dq = -t/q where q is not clipped and t != 0 (0 elsewhere); -inf sign(t) at q = 0."""
    live = inside & (t != 0)
    g = np.where(live, -t / np.where(q == 0, 1, q), 0)
    return np.where(live & (q == 0), -np.inf * np.sign(t), g)


def _nan_rows(value: np.ndarray, grad: np.ndarray, *inputs: np.ndarray) -> None:
    """A NaN anywhere in a sample's inputs makes its value and its whole gradient row NaN (in place)."""
    rows = np.logical_or.reduce([np.isnan(a).any(axis=1) for a in inputs])
    value[rows] = np.nan
    grad[rows] = np.nan


def _categorical_cross_entropy(call: Call, scales: bool) -> Reference:
    clip = call.params.get("clip")
    bounds = None if clip is None else clip_bounds(clip, call.first.dtype)
    normalize = call.params.get("normalize", False)

    def kernel(p, t, call, sg_out):
        t = t.astype(call.work)
        total_p = np.sum(p, axis=1, keepdims=True) if normalize else call.work.type(1)
        q = p / total_p if normalize else p
        log_q, _, inside = _clipped_logs(q, bounds)  # the gradient below only uses q where inside
        value = -np.sum(_zero_times(t, log_q), axis=1)
        g = _minus_ratio(t, q, inside)
        if normalize:
            kept_t = np.sum(np.where(inside, t, 0), axis=1, keepdims=True)
            g = (g + kept_t) / total_p
        _nan_rows(value, g, p, t)
        if sg_out is None:
            return value, g
        ta = np.abs(t).astype(np.float64)
        logq = np.abs(log_q).astype(np.float64)
        sv = _sum_factor(p.shape[1]) * np.sum(_zero_times(ta, logq + 1), axis=1)
        q64 = q.astype(np.float64)
        sg = np.where(inside & (ta != 0), ta / np.where(q64 == 0, 1, q64), 0)
        if normalize:  # sum(p) and the sum over classes autodiff forms for it err by (1 + log2 C) u
            kept_ta = np.sum(np.where(inside, ta, 0), axis=1, keepdims=True)
            sg = _sum_factor(p.shape[1]) * (sg + kept_ta) / np.asarray(total_p, np.float64)
        return value, g, _finite_where(sv, value), _finite_where(sg, g)

    return _rowwise(call, kernel, scales, per_sample=True)


def _kl_divergence(call: Call, scales: bool) -> Reference:
    clip = call.params.get("clip")
    log_input = call.params["log_input"]

    def kernel(q, p, call, sg_out):
        p = p.astype(call.work)
        inside = np.ones(q.shape, bool)
        if clip is not None:  # Keras clips both to [fl_d(clip), 1]
            lo = call.work.type(constant_in_dtype(clip, call.first.dtype))
            p = np.clip(p, lo, 1)
            inside = q >= lo
            q = np.maximum(q, lo)
        log_q = q if log_input else np.log(q)
        terms = p * (np.log(p) - log_q)
        terms[p == 0] = 0  # 0 log(0 / q) = 0 for every q, also q = 0 (log q = -inf)
        value = np.sum(terms, axis=1)
        if log_input:
            g = -p.copy()
        else:
            g = _minus_ratio(p, q, inside)
        _nan_rows(value, g, q, p)
        if sg_out is None:
            return value, g
        pa = np.abs(p).astype(np.float64)
        mags = np.abs(np.log(p)).astype(np.float64) + np.abs(log_q).astype(np.float64)
        if not log_input:  # from probabilities implementations form log(p / q): a rounded argument, ~u absolute
            mags += 1
        sv = _sum_factor(q.shape[1]) * np.sum(_zero_times(pa, mags), axis=1)
        sg = pa if log_input else np.where(inside & (pa != 0), pa / np.where(q == 0, 1, q).astype(np.float64), 0)
        return value, g, _finite_where(sv, value), _finite_where(sg, g)

    return _rowwise(call, kernel, scales, per_sample=True)


# ---------------------------------------------------------------------------------------------
# Elementwise losses
# ---------------------------------------------------------------------------------------------


def _elementwise(call: Call, kernel: Callable, scales: bool) -> Reference:
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
            sv[sl], sg[sl] = _finite_where(out[2], out[0]), _finite_where(out[3], out[1])
        _divide_grad(grad[sl], sg[sl] if scales else None, d)
    sv, sg = (None, None) if not scales else (sv.reshape(shape), sg.reshape(shape))
    return _reduce(call, value.reshape(shape), grad.reshape(shape), sv, sg, d)


def _softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
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
        value = _zero_times(pw * z, _softplus(-x)) + _zero_times(zc, _softplus(x))
        grad = _zero_times(zc, _sigmoid(x)) - _zero_times(pw * z, _sigmoid(-x))
        nan = np.isnan(x) | np.isnan(z)
        value[nan], grad[nan] = np.nan, np.nan
        if not scales:
            return value, grad
        ax, az, apw = np.nan_to_num(np.abs(x), posinf=0), np.abs(z), np.abs(pw)
        sv = (1 + az + apw * az) * (ax + np.log1p(np.exp(-ax)))
        # sigma(+-x) computed as exp(x - logaddexp(x, 0)) (optax, jax.nn) carries a relative error of
        # about u |x|: the gradient terms are scaled by (1 + |x|), not just by their size
        sg = 1 + (1 + apw) * az + (np.abs(zc) * _sigmoid(x) + apw * az * _sigmoid(-x)) * ax
        sg = np.where(np.isnan(sg), 1 + (1 + apw) * az, sg)
        return value, grad, sv.astype(np.float64), np.broadcast_to(sg, x.shape).astype(np.float64)

    return _elementwise(call, kernel, scales)


def _binary_cross_entropy(call: Call, scales: bool) -> Reference:
    clip, log_min = call.params.get("clip"), call.params.get("log_min")
    bounds = None if clip is None else clip_bounds(clip, call.first.dtype)
    offset = call.params.get("log_offset")
    offset = None if offset is None else constant_in_dtype(offset, call.first.dtype)  # tf_keras adds it in dtype

    def kernel(p, z):
        w = call.work.type
        if offset is None:
            log_p, log_1mp, inside = _clipped_logs(p, bounds)
            den_p, den_1mp, o = p, 1 - p, w(0)
        else:
            log_p, log_1mp, inside = _offset_logs(p, bounds, offset)
            o = w(offset)
            den_p, den_1mp = p + o, (1 - p) + o
        pass_p = pass_1mp = inside
        if log_min is not None:
            pass_p, pass_1mp = inside & (log_p >= log_min), inside & (log_1mp >= log_min)
            log_p, log_1mp = np.maximum(log_p, w(log_min)), np.maximum(log_1mp, w(log_min))
        value = -(_zero_times(z, log_p) + _zero_times(1 - z, log_1mp))
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
        sv = _zero_times(np.abs(z64), lp + bool(offset)) + _zero_times(np.abs(1 - z64), l1 + 1)
        sg = np.abs(term_p).astype(np.float64) + np.abs(term_1mp).astype(np.float64)
        return value, grad, sv, sg

    return _elementwise(call, kernel, scales)


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

    return _elementwise(call, kernel, scales)


def _mean_absolute_error(call: Call, scales: bool) -> Reference:
    def kernel(x, y):
        d = x - y
        value, grad = np.abs(d), np.sign(d)
        if not scales:
            return value, grad
        return value, grad, value.astype(np.float64), np.ones(d.shape)

    return _elementwise(call, kernel, scales)


def _root_mean_squared_error(call: Call, scales: bool) -> Reference:
    x = call.first.astype(call.work)
    d = x - np.broadcast_to(call.second, x.shape).astype(call.work)
    n = d.size
    value = np.sqrt(np.sum(d * d) / call.work.type(n)) if n else np.asarray(np.nan, call.work)
    grad = d / (n * value) if value != 0 else np.full_like(d, np.nan)
    value = np.asarray(value, call.work)
    if not scales:
        return Reference(value, grad)
    f = _sum_factor(n)
    sv = np.asarray(f * float(value)) if np.isfinite(value) else np.asarray(0.0)
    sg = f * np.abs(grad).astype(np.float64)
    return Reference(value, grad, sv, _finite_where(sg, grad))


def _sigmoid_loss(call: Call, scales: bool) -> Reference:
    def kernel(x):
        s = _sigmoid(x)
        s_neg = _sigmoid(-x)  # 1 - s without cancellation
        grad = s * s_neg
        if not scales:
            return s, grad
        s64, ax = s.astype(np.float64), np.abs(x).astype(np.float64)
        ax = np.where(np.isfinite(ax), ax, 0)
        sn64 = s_neg.astype(np.float64)
        # y = fl(s) is off by ~u (s + |x| s (1 - s)) (exp's argument), and autodiff forms y (1 - y), so
        # the error of y passes into 1 - y unscaled: where s -> 1 it is ~u s^2 against a tiny s (1 - s)
        return s, grad, s64 * (1 + ax * sn64), s64 * sn64 * (1 + ax) + s64 * s64

    return _elementwise(call, kernel, scales)


_LOSSES: dict[str, Callable[[Call, bool], Reference]] = {
    "softmax_cross_entropy": _softmax_cross_entropy,
    "sparse_softmax_cross_entropy": _sparse_softmax_cross_entropy,
    "sigmoid_cross_entropy": _sigmoid_cross_entropy,
    "binary_cross_entropy": _binary_cross_entropy,
    "categorical_cross_entropy": _categorical_cross_entropy,
    "mean_squared_error": _mean_squared_error,
    "mean_absolute_error": _mean_absolute_error,
    "root_mean_squared_error": _root_mean_squared_error,
    "kl_divergence": _kl_divergence,
    "smooth_labels": _smooth_labels,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "sigmoid": _sigmoid_loss,
    "linear_cross_entropy": _linear,
}



@functools.lru_cache(maxsize=1)
def _kappa_table() -> dict:
    return json.loads(resources.files("lossconf").joinpath("kappa.json").read_text())


def kappa(loss_id: str, quantity: str) -> float:
    """Calibrated kappa of the error model for ``loss_id`` and one of its quantities (kappa.json)."""
    quantities = get_loss(loss_id).quantities
    if quantity not in quantities:
        raise ValueError(f"quantity: expected one of {quantities}, got {quantity!r}")
    return float(_kappa_table()[loss_id][quantity])
