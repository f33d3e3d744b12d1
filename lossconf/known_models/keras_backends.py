"""Models of Keras 3 on the JAX and torch backends: the backends' own sigmoid, clip and binary
cross-entropy (jnp.clip's split tie gradient, torch's log clamp at -100) under Keras's loss formulas."""

from __future__ import annotations

import numpy as np

from lossconf.known_models.base import BCE_EPS, Inputs, _class_axis, _f64, _reference, _rounding
from lossconf.reference import numpy_dtype
from lossconf.reference.probability import clip_bounds


def _jax_clip_tie(p: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """jnp.clip(p, lo, hi)'s gradient: jnp.maximum/minimum whose JVP splits a tie (lax max_p/min_p's
    _balanced_eq): 1 inside, 1/2 where p equals a bound, 0 outside."""
    return np.where(p == lo, 0.5, p > lo) * np.where(p == hi, 0.5, p < hi)


def _keras_focal_factor(p: np.ndarray, z: np.ndarray, params: dict, fl) -> tuple:
    """Keras's focal terms in the dtype: q = 1 - (z p + (1 - z)(1 - p)) (cancels for p near 0 or 1), q^gamma,
    the class weight a_t (1 without apply_class_balancing) and gamma."""
    alpha, gamma = params.get("alpha"), float(params.get("gamma", 2.0))
    q = fl(1 - fl(fl(z * p) + fl(fl(1 - z) * fl(1 - p))))
    return q, fl(q**gamma), 1.0 if alpha is None else fl(alpha * z + (1 - alpha) * (1 - z)), gamma


def _with_sigmoid_rounding(s_value, p, z, q, gamma, ce, a_t, params: dict, dtype):
    """The reference's value scale plus the focal loss's sensitivity to a relative rounding of p (the sigmoid
    formed op by op, off by an ulp or two): a_t (q^gamma (z + (1 - z) p / (1 - p)) [p inside the clip bounds]
    + gamma q^(gamma - 1) p ce), large where 1 - p cancels; summed over the elements for 'sum'/'mean'."""
    lo, hi = clip_bounds(1e-7, numpy_dtype(dtype))
    with np.errstate(all="ignore"):
        d_ce = np.where((p >= lo) & (p <= hi), z + (1 - z) * p / (1 - p), 0.0)
        extra = np.abs(a_t * (q**gamma * d_ce + gamma * q ** (gamma - 1) * p * ce))
    extra = np.where(np.isfinite(extra), extra, 0.0)
    if params.get("reduction") in ("sum", "mean"):
        extra = np.sum(extra) / (max(extra.size, 1) if params["reduction"] == "mean" else 1)
    return np.asarray(s_value) + extra


def _keras_focal_on_jax(loss, inputs: Inputs, dtype, variant) -> tuple:
    """Keras's binary_focal_crossentropy(from_logits=True) as the jax backend computes it, each op in the dtype:
    p = 1 / (1 + exp(-x)) (lax.logistic has no HLO op: logistic_impl), pc = jnp.clip(p, fl(1e-7), fl(1 - 1e-7)),
    ce = -(z log pc + (1 - z) log(1 - pc)) unguarded (0 * log 0 = NaN), q = 1 - (z p + (1 - z)(1 - p)) (cancels
    for p near 0 or 1), a_t q^gamma ce; the gradient is jax.vjp's chain of the same ops (pow's JVP gamma
    q^(gamma - 1), log's g / x, a clip bound that p equals passes half, logistic's p (1 - p)); scales the
    reference's, the value's with the rounding of p (``_with_sigmoid_rounding``)."""
    first, second, params = inputs
    _, _, s_value, s_grad = _reference(loss, first, second, params, variant)
    fl = _rounding(dtype)
    x, z = _f64(first), _f64(second)
    lo, hi = clip_bounds(1e-7, numpy_dtype(dtype))
    with np.errstate(all="ignore"):
        p = fl(1 / fl(1 + fl(np.exp(-x))))
        pc = np.clip(p, lo, hi)
        log_p, log_q = fl(np.log(pc)), fl(np.log(fl(1 - pc)))
        ce = -fl(fl(z * log_p) + fl(fl(1 - z) * log_q))
        q, focal, a_t, gamma = _keras_focal_factor(p, z, params, fl)
        value = a_t * fl(focal * ce)
        n = max(x.size, 1) if params.get("reduction") == "mean" else 1
        g = a_t / n  # the upstream gradient of each element
        d_q = g * ce * (gamma * q ** (gamma - 1))
        d_ce = g * focal
        d_pc = -(d_ce * z) / pc + (d_ce * (1 - z)) / fl(1 - pc)
        d_p = -d_q * z + d_q * (1 - z) + d_pc * _jax_clip_tie(p, lo, hi)
        grad = d_p * (p * (1 - p))
    if params.get("reduction") in ("sum", "mean"):
        value = np.sum(value) / n
    return value, grad, _with_sigmoid_rounding(s_value, p, z, q, gamma, ce, a_t, params, dtype), s_grad


def _torch_sigmoid(x: np.ndarray, dtype) -> np.ndarray:
    """torch's CPU sigmoid: 1 / (1 + exp(-x)) op by op in the dtype, float32 for float16/bfloat16 (then rounded)."""
    fl, work = _rounding(dtype), _rounding(dtype if dtype == "float64" else "float32")
    with np.errstate(over="ignore"):
        return fl(work(1 / work(1 + work(np.exp(-x)))))


def _torch_clipped_bce(p: np.ndarray, z: np.ndarray, upstream, dtype, arithmetic=None) -> tuple:
    """Keras's binary_crossentropy on the torch backend: pc = torch.clip(p, fl(1e-7), fl(1 - 1e-7)), then
    F.binary_cross_entropy's CPU kernel (each log clamped at -100) and its backward
    g (pc - z) / max((1 - pc) pc, EPSILON) op by op in the dtype (EPSILON = 1e-12 as a float, then the dtype),
    passed where lo <= p <= hi with the bounds in the dtype (clamp's backward). ``arithmetic`` = "float32":
    the clip, logs and backward in float32 with float32 bounds (inductor's upcast), results rounded to the
    dtype. (value, d value / dp) elementwise."""
    fl, out = _rounding(arithmetic or dtype), _rounding(dtype)
    lo, hi = clip_bounds(1e-7, numpy_dtype(arithmetic or dtype))
    mask_lo, mask_hi = clip_bounds(1e-7, numpy_dtype(dtype))
    eps = fl(np.float32(BCE_EPS))
    with np.errstate(all="ignore"):
        pc = np.clip(p, lo, hi)
        log_p, log_q = (np.maximum(fl(np.log(pc)), -100.0), np.maximum(fl(np.log1p(-pc)), -100.0))
        value = fl(fl(fl(z - 1) * log_q) - fl(z * log_p))
        d_pc = fl(fl(upstream * fl(pc - z)) / np.maximum(fl(fl(1 - pc) * pc), eps))
        return out(value), out(np.where((p >= mask_lo) & (p <= mask_hi), d_pc, 0.0))


def _keras_upstream(params: dict, first: np.ndarray, dtype) -> float:
    """The gradient reaching each element of a Keras elementwise loss: 1, or fl(fl(1 / N) / C) for
    'sum_over_batch_size' (ops.divide_no_nan by N, then the mean over the last axis C)."""
    if params.get("reduction") != "mean" or not np.size(first):
        return 1.0
    fl = _rounding(dtype)
    c = np.shape(first)[-1] if np.ndim(first) else 1
    return float(fl(fl(1 / max(np.size(first) // c, 1)) / c))


def _keras_bce_on_torch(loss, inputs: Inputs, dtype, variant, arithmetic=None) -> tuple:
    """keras.losses.BinaryCrossentropy on probabilities, torch backend: ``_torch_clipped_bce`` (a probability that
    rounds to 1 beside its clip bound, float16/bfloat16, costs 100 (1 - z) instead of inf), averaged; scales the
    reference's."""
    first, second, params = inputs
    _, _, s_value, s_grad = _reference(loss, first, second, params, variant)
    p, z = _f64(first), _f64(second)
    value, grad = _torch_clipped_bce(p, z, _keras_upstream(params, p, dtype), dtype, arithmetic)
    if params.get("reduction") in ("sum", "mean"):
        value = np.sum(value) / (max(value.size, 1) if params["reduction"] == "mean" else 1)
    return value, grad, s_value, s_grad


def _keras_focal_on_torch(loss, inputs: Inputs, dtype, variant, arithmetic=None) -> tuple:
    """Keras's binary_focal_crossentropy(from_logits=True) on the torch backend: p = torch.sigmoid(x)
    (``_torch_sigmoid``), ce = ``_torch_clipped_bce``, q = 1 - (z p + (1 - z)(1 - p)) in the dtype (cancels for p
    near 0 or 1), a_t q^gamma ce; the gradient autograd's: pow's backward gamma q^(gamma - 1) (0 for gamma = 0),
    sigmoid's p (1 - p); scales the reference's, the value's with the rounding of p (``_with_sigmoid_rounding``).
    ``arithmetic`` = "float32": inductor's graphs (Keras's torch ops break dynamo's graph at the sigmoid, the
    clipped BCE and the focal factor), each computed in float32 with float32 constants (clip bounds) and its
    outputs rounded to the dtype: p, ce, the focal value and the gradient reaching ce or p from each graph."""
    first, second, params = inputs
    _, _, s_value, s_grad = _reference(loss, first, second, params, variant)
    fl, out = _rounding(arithmetic or dtype), _rounding(dtype)
    x, z = _f64(first), _f64(second)
    g = _keras_upstream(params, x, dtype)
    with np.errstate(all="ignore"):
        p = _torch_sigmoid(x, dtype)
        q, focal, a_t, gamma = _keras_focal_factor(p, z, params, fl)
        ce, d_ce = _torch_clipped_bce(p, z, out(fl(fl(g * a_t) * focal)), dtype, arithmetic)
        value = out(a_t * fl(focal * ce))
        d_q = 0.0 if gamma == 0 else g * a_t * ce * gamma * q ** (gamma - 1)
        grad = out((d_q * (1 - 2 * z) + d_ce) * (p * (1 - p)))
    if params.get("reduction") in ("sum", "mean"):
        value = np.sum(value) / (max(x.size, 1) if params["reduction"] == "mean" else 1)
    return value, grad, _with_sigmoid_rounding(s_value, p, z, q, gamma, ce, a_t, params, dtype), s_grad


def _torch_clamp_mask(p: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """torch.clip(p, lo, hi)'s gradient (clamp_backward): 1 where lo <= p <= hi, 0 outside."""
    return ((p >= lo) & (p <= hi)).astype(np.float64)


def _keras_probability_losses(loss, inputs: Inputs, dtype, variant, clip_grad=_jax_clip_tie) -> tuple:
    """Keras's probability losses on the jax backend, each backward step rounded to the dtype (an upstream
    g t below float16's subnormals is 0), with jnp.clip's tie gradient: KLDivergence sum t' log(t' / q'),
    q' = clip(q, fl(1e-7), 1), gradient -(g t' / r) t' / q'^2 (r = t' / q') halved where q is 1 or fl(1e-7);
    CategoricalCrossentropy(probs) -sum t log clip(p / sum p, fl(1e-7), fl(1 - 1e-7)) with p / sum p formed
    in the dtype, gradient through the normalisation with the clip's halves; value and scales the reference's."""
    first, second, params = inputs
    value, grad, s_value, s_grad = _reference(loss, first, second, params, variant)
    fl = _rounding(dtype)
    p, t = _f64(first), _f64(second)
    lo, hi = clip_bounds(1e-7, numpy_dtype(dtype))
    n = max(p.size // max(p.shape[-1], 1), 1) if params.get("reduction") == "mean" and p.ndim else 1
    g = fl(1 / n)  # the upstream of each row's sum, then every backward step rounded to the dtype
    with np.errstate(all="ignore"):
        if loss == "kl_divergence":  # t' log(r), r = t' / q': d/dq' = -(g t' / r) t' / q'^2
            q, t = np.clip(p, lo, 1.0), np.clip(t, lo, 1.0)
            d_r = fl(fl(t * g) / fl(t / q))
            return value, fl(fl(-d_r * t) * fl(1 / fl(q * q))) * clip_grad(p, lo, 1.0), s_value, s_grad
        axis = _class_axis(params)
        total = fl(np.sum(p, axis=axis, keepdims=True))
        q = fl(p / total)
        d_q = fl(fl(t * -g) / np.clip(q, lo, hi)) * clip_grad(q, lo, hi)
        d_total = fl(np.sum(fl(fl(-d_q * p) * fl(1 / fl(total * total))), axis=axis, keepdims=True))
        grad = fl(fl(d_q / total) + d_total)
    return value, grad, s_value, s_grad
