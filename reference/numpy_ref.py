"""The NumPy reference: value, closed-form gradient and error-model scales of every catalog loss.

Precision: inputs of float16/bfloat16/float32 are evaluated in float64, float64 inputs in
``np.longdouble`` (80-bit x87 extended on x86-64, IEEE quad on aarch64 Linux; where it is plain float64
float64 inputs raise, see ``working_dtype``; ``benchmarks/reference_accuracy.py`` measures it against
a double-double alternative and against the mpmath oracle).

This module validates a call (``prepare``), keeps the public API (``evaluate``, ``value_and_grad``,
``magnitudes``, ``kappa``) and dispatches each loss id to its family module, whose formulas are arranged
so that no step cancels when the inputs are in their domain: ``softmax_family`` (softmax and sparse CE,
softmax, log_softmax, label smoothing), ``probability`` (categorical CE, KL divergence), ``elementwise``
(sigmoid and binary CE, squared/absolute/RMS error, sigmoid). ``drivers`` runs a family's kernels in
bounded chunks and reduces. Non-finite inputs follow the mathematical limit (see ``value_and_grad``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import ml_dtypes
import numpy as np

from lossconf.reference import (
    elementwise,
    margin,
    probability,
    regression,
    sequence,
    similarity,
    softmax_family,
)
from lossconf.reference.catalog import REDUCTIONS, Loss, get_loss, get_variant
from lossconf.reference.drivers import Reference

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
    "kink": 0.0,
    "norm_floor": None,
    "floor_product": False,
    "sign": 1.0,
    "offset": 0.0,
    "mean_per_target_length": False,
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
    second = _check_sequences(loss, first, second, full) if loss.sequence else _check_second(loss, first, second, full)
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


def _check_sequences(loss: Loss, first: np.ndarray, second, p: dict) -> np.ndarray:
    """CTC: logits [N, T, C], labels int [N, S], lengths within T and S, labels in [0, C) and not the blank."""
    if first.ndim != 3:
        raise ValueError(f"first: {loss.id} takes logits [N, T, C]; got shape {first.shape}")
    n, t, c = first.shape
    if second is None:
        raise ValueError(f"second: {loss.id} needs labels [N, S]; got None")
    second = np.asarray(second)
    if not np.issubdtype(second.dtype, np.integer) or second.ndim != 2 or second.shape[0] != n:
        raise ValueError(f"second: labels must be an integer array [N, S] with N = {n}; got {second.dtype} "
                         f"{second.shape}")
    blank = p["blank"]
    if isinstance(blank, bool) or not isinstance(blank, (int, np.integer)) or not 0 <= blank < c:
        raise ValueError(f"blank: expected an integer in [0, {c}), got {blank!r}")
    if not isinstance(p["zero_infinity"], (bool, np.bool_)):
        raise TypeError(f"zero_infinity: expected a bool, got {p['zero_infinity']!r}")
    for name, most in (("input_lengths", t), ("target_lengths", second.shape[1])):
        if p[name] is None:
            continue
        a = np.asarray(p[name])
        if not np.issubdtype(a.dtype, np.integer) or a.shape != (n,) or np.any(a < 0) or np.any(a > most):
            raise ValueError(f"{name}: expected None or {n} integers in [0, {most}]; got {p[name]!r}")
        p[name] = a.astype(np.int64)
    ls = p["target_lengths"] if p["target_lengths"] is not None else np.full(n, second.shape[1])
    used = np.arange(second.shape[1])[None, :] < ls[:, None]
    bad = used & ((second < 0) | (second >= c) | (second == blank))
    if bad.any():
        raise ValueError(f"second: labels must be in [0, {c}) and not the blank {blank}; got {second[bad][0]}")
    return second.astype(np.int64)


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
    if "delta" in p and not (_is_number(p["delta"]) and p["delta"] > 0):
        raise ValueError(f"delta: expected a positive number, got {p['delta']!r}")
    if "beta" in p and not (_is_number(p["beta"]) and p["beta"] >= 0):
        raise ValueError(f"beta: expected a number >= 0, got {p['beta']!r}")
    if p.get("alpha") is not None and not (_is_number(p["alpha"]) and 0 <= p["alpha"] <= 1):
        raise ValueError(f"alpha: expected None or a number in [0, 1], got {p['alpha']!r}")
    if "gamma" in p and not (_is_number(p["gamma"]) and p["gamma"] >= 0):
        raise ValueError(f"gamma: expected a number >= 0, got {p['gamma']!r}")
    if "full" in p and not isinstance(p["full"], (bool, np.bool_)):
        raise TypeError(f"full: expected a bool, got {p['full']!r}")
    if "kink" in p and p["kink"] not in (0.0, 0.5, 1.0):
        raise ValueError(f"kink: expected 0, 0.5 or 1, got {p['kink']!r}")
    if p.get("log_min") is not None and not isinstance(p["log_min"], (int, float)):
        raise TypeError(f"log_min: expected a number, got {p['log_min']!r}")


def _is_number(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float, np.integer, np.floating)) and not np.isnan(v)


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
    if loss.id == "poisson_nll":
        if not p["log_input"]:
            _non_negative("first", first, "rates")
        _non_negative("second", second, "counts")
    if second is not None and loss.inputs[1].role == "labels":
        c = first.shape[p["axis"]]
        bad = (second < 0) | (second >= c)
        if p.get("ignore_index") is not None:
            bad &= second != p["ignore_index"]
        if bad.any():
            raise ValueError(f"second: labels must be in [0, {c}) or ignore_index={p.get('ignore_index')}; "
                             f"got {second[bad].flat[0]}")


def _non_negative(name: str, a: np.ndarray, what: str) -> None:
    if np.any(a.astype(np.float64) < 0):
        raise ValueError(f"{name}: {what} must be >= 0 (NaN allowed); got {np.nanmin(a.astype(np.float64))}")


def _in_unit_interval(name: str, a: np.ndarray) -> None:
    a64 = a.astype(np.float64)
    if np.any((a64 < 0) | (a64 > 1)):
        raise ValueError(f"{name}: probabilities must lie in [0, 1] (NaN allowed); "
                         f"got values in [{np.nanmin(a64)}, {np.nanmax(a64)}]")


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


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


# Which family module computes each loss id.
_LOSSES: dict[str, Callable[[Call, bool], Reference]] = {
    **softmax_family.LOSSES, **probability.LOSSES, **elementwise.LOSSES, **regression.LOSSES, **margin.LOSSES,
    **similarity.LOSSES, **sequence.LOSSES,
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
