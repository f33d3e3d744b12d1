"""Models of conventions no catalog variant names: 'mean' over every sample (ignored ones included), label
smoothing over the last axis instead of the class axis."""

from __future__ import annotations

import numpy as np

from lossconf.known_models.base import Inputs, _f64, _reference


def _mean_over_all_samples(loss, inputs: Inputs, dtype, variant) -> tuple:
    """reduction 'mean' as the sum over kept samples divided by every sample, ignored ones included."""
    first, second, params = inputs
    if params.get("reduction") != "mean":
        return _reference(loss, first, second, params, variant)
    value, grad, s_value, s_grad = _reference(loss, first, second, {**params, "reduction": "sum"}, variant)
    n = max(int(np.asarray(second).size), 1)
    return value / n, grad / n, s_value / n, s_grad / n


def _smoothing_over_last_axis(loss, inputs: Inputs, dtype, variant) -> tuple:
    """Label smoothing (1 - eps) t + eps / shape[-1] whatever the class axis, on the dense targets."""
    first, second, params = inputs
    eps = float(params.get("label_smoothing", 0.0) or 0.0)
    t = _f64(second)
    if eps > 0:
        t = (1 - eps) * t + eps / t.shape[-1]
    return _reference(loss, first, t, {**params, "label_smoothing": 0.0}, variant)
