"""What the models and conditions share: the inputs' form, Paddle's and torch's constants, the reference
evaluated as a model's baseline, and rounding to a dtype."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lossconf.errormodel import finfo
from lossconf.reference import evaluate, numpy_dtype

Inputs = tuple[np.ndarray, np.ndarray | None, dict]  # (first, second, params) cast to the dtype under test

CLIP = 64.0  # Paddle's softmax kThreshold: x - max(x) is clipped at -64

BCE_EPS = 1e-12  # the floor of p (1 - p) in torch's and Paddle's binary_cross_entropy backward


def _f64(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else np.asarray(a).astype(np.float64)


def _class_axis(params: dict) -> int:
    return int(params.get("axis", -1))


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


def _reference(loss: str, first, second, params: dict, variant: str | None) -> tuple:
    ref = evaluate(loss, first, second, variant=variant, **params)
    return ref.value, ref.grad, ref.scale_value, ref.scale_grad


def _rounding(dtype) -> Callable[[np.ndarray], np.ndarray]:
    """fl_d: a float64 array rounded to ``dtype`` and back (overflowing to inf)."""
    dt = numpy_dtype(dtype)

    def fl(a):
        with np.errstate(over="ignore"):
            return np.asarray(a, dtype=np.float64).astype(dt).astype(np.float64)
    return fl


def _widened_to_float32(dtype: str, *scaled: tuple) -> tuple:
    """Each (scale, truth) pair's scale widened to float32's bound: (u32 (S + |truth|) + float32's subnormal
    spacing) / u, so that kappa u S' is at least float32's kappa (u32 S + subnormal) plus its rounding of |truth|."""
    u = float(finfo(dtype).eps / 2)
    u32, tiny32 = float(finfo("float32").eps / 2), float(finfo("float32").smallest_subnormal)
    with np.errstate(invalid="ignore"):
        return tuple((u32 * (np.asarray(s) + np.where(np.isfinite(t), np.abs(t), 0)) + tiny32) / u for s, t in scaled)


def _sum_in_order(a: np.ndarray, axis: int, acc) -> np.ndarray:
    """The sum along ``axis`` accumulated element by element in order in dtype ``acc`` (the axis kept)."""
    return np.cumsum(a, axis=axis, dtype=acc).take([-1], axis=axis)


Model = Callable[[str, Inputs, str, str | None], tuple]
