"""Models of arithmetic precision: results formed op by op in the dtype (autodiff's intermediates), or
computed partly in float32 (a compiler's upcast, Keras's float64 promoted to float32)."""

from __future__ import annotations

import numpy as np

from lossconf.known_models.base import Inputs, Model, _class_axis, _f64, _reference, _widened_to_float32
from lossconf.reference import evaluate, get_loss, numpy_dtype


def _cosine_backward_in_dtype(loss, inputs: Inputs, dtype, variant) -> tuple:
    """The gradient of torch's cosine_similarity, sum((x / n_x) (y / n_y)) with n = max(|v|, eps), as its autograd
    forms it op by op in the dtype: b / n_x + (sum_j -b_j ((x_j / n_x) / n_x)) (x / |x|), b = y / n_y, each
    step rounded (subnormal where 1 / |x| is below the smallest normal number); value and scales the reference's."""
    first, second, params = inputs
    value, grad, s_value, s_grad = _reference(loss, first, second, params, variant)
    dt, axis = numpy_dtype(dtype), _class_axis(params)
    if not np.size(first) or np.shape(first) != np.shape(second):
        return value, grad, s_value, s_grad

    def fl(a):
        return np.asarray(a, dtype=np.float64).astype(dt).astype(np.float64)

    x, y = _f64(first), _f64(second)
    eps = fl(1e-8)
    with np.errstate(all="ignore"):
        norm_x = fl(np.sqrt(np.sum(x * x, axis=axis, keepdims=True)))  # linalg_vector_norm accumulates wider
        norm_y = fl(np.sqrt(np.sum(y * y, axis=axis, keepdims=True)))
        nx, ny = np.maximum(norm_x, eps), np.maximum(norm_y, eps)
        b = fl(y / ny)
        direct = fl(b / nx)  # DivBackward: grad / other
        grad_norm = fl(np.sum(fl(-b * fl(fl(x / nx) / nx)), axis=axis, keepdims=True))  # -grad (self / other) / other
        model = fl(direct + fl(grad_norm * np.where(norm_x == 0, 0.0, fl(x / norm_x))))  # norm backward, p = 2
    return value, model, s_value, s_grad


def _computed_in_float32(loss, inputs: Inputs, dtype, variant) -> tuple:
    """The reference on the inputs in float32 (its constants, e.g. an epsilon, rounded to float32 rather than
    to the dtype), value and gradient then rounded to the dtype (overflowing to inf)."""
    first, second, params = inputs

    def as32(a):
        floating = isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating)
        return a.astype(np.float64).astype(np.float32) if floating else a

    params = {k: as32(v) for k, v in params.items()}
    value, grad, s_value, s_grad = _reference(loss, as32(first), as32(second), params, variant)
    with np.errstate(over="ignore"):
        value, grad = (np.asarray(a).astype(numpy_dtype(dtype)).astype(np.float64) for a in (value, grad))
    return value, grad, s_value, s_grad


def _float32_arithmetic(loss, inputs: Inputs, dtype, variant) -> tuple:
    """The reference with the scales widened to float32's bound: a result computed (partly) in float32
    agrees with it, a wrong formula does not. kappa u S' = kappa u32 S + u32 |truth| >= the float32 bound."""
    first, second, params = inputs
    ref = evaluate(loss, first, second, variant=variant, **params)
    further = [ref.grads[q] for q in get_loss(loss).quantities[2:]]  # (gradient, scale) of linear_weight...
    scales = _widened_to_float32(dtype, (ref.scale_value, ref.value), (ref.scale_grad, ref.grad),
                                 *((s, g) for g, s in further))
    widened = (a for (g, _), s in zip(further, scales[2:], strict=True) for a in (g, s))
    return (ref.value, ref.grad, *scales[:2], *widened)


def _in_float32_arithmetic(model: Model) -> Model:
    """``model`` with its scales widened to float32's bound (``_float32_arithmetic``'s widening): the modelled
    computation carried out partly in float32 (Keras off TensorFlow promotes float64 to float32)."""
    def widened(loss, inputs: Inputs, dtype, variant) -> tuple:
        value, grad, s_value, s_grad = model(loss, inputs, dtype, variant)
        return value, grad, *_widened_to_float32(dtype, (s_value, value), (s_grad, grad))
    return widened


def _two_log_bce_backward_in_dtype(loss, inputs: Inputs, dtype, variant) -> tuple:
    """Gradient of -mean(z log p + (1 - z) log(1 - p)) as autodiff forms it op by op in the dtype (Keras on
    TensorFlow): the upstream g = fl(fl(1 / N) / C) for 'mean' over [N, C] (1 otherwise), then
    fl(fl(-g z) fl(1 / p)) - fl(fl(-g fl(1 - z)) fl(1 / fl(1 - p))), each step rounded; value and scales the
    reference's (of the declared variant)."""
    first, second, params = inputs
    value, grad, s_value, s_grad = _reference(loss, first, second, params, variant)
    dt = numpy_dtype(dtype)
    p, z = np.asarray(first).astype(dt), np.asarray(second).astype(dt)
    one = np.asarray(1).astype(dt)
    if params.get("reduction") == "mean" and p.size:
        g = (one / np.asarray(max(p.size // p.shape[-1], 1)).astype(dt)).astype(dt)
        g = (g / np.asarray(p.shape[-1]).astype(dt)).astype(dt)
    else:
        g = one
    with np.errstate(all="ignore"):
        d_log_p = ((-g * z).astype(dt) * (one / p).astype(dt)).astype(dt)
        d_log_q = ((-g * (one - z).astype(dt)).astype(dt) * (one / (one - p).astype(dt)).astype(dt)).astype(dt)
        g_p = (d_log_p - d_log_q).astype(dt)
    return value, g_p.astype(np.float64), s_value, s_grad
