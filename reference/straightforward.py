"""A straightforward implementation of each loss *in the dtype under test*, for calibrating kappa.

It is what a careful framework does (max-shifted log-softmax, log1p(exp(-|x|)), pairwise sums,
autodiff-shaped gradients), with every elementary operation rounded to the dtype: each operation is
computed in float64 and the result cast to the dtype (bfloat16 via ml_dtypes). Its worst error against
the reference, in units of u * S, calibrates the error model's kappa (``benchmarks/calibrate_kappa.py``).

Canonical semantics only (no variants), class axis last, parameters ``label_smoothing`` and
``weight``; not a reference: it is meant to be *as inaccurate as a correct implementation may be*.
"""

from __future__ import annotations

import numpy as np

from lossconf.reference.dtypes import dtype_name, numpy_dtype


class _Rounded:
    """Elementary operations rounded to one dtype."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = np.dtype(dtype)

    def __call__(self, a) -> np.ndarray:
        """Round float64 values to the dtype (kept as float64 for the next operation)."""
        return np.asarray(a, np.float64).astype(self.dtype).astype(np.float64)

    def sum(self, a: np.ndarray, axis: int = -1) -> np.ndarray:
        """Pairwise (tree) sum along ``axis``, rounding after every addition."""
        a = np.moveaxis(np.asarray(a, np.float64), axis, -1)
        if a.shape[-1] == 0:
            return np.zeros(a.shape[:-1])
        while a.shape[-1] > 1:
            if a.shape[-1] % 2:
                a = np.concatenate([a, np.zeros(a.shape[:-1] + (1,))], axis=-1)
            a = self(a[..., ::2] + a[..., 1::2])
        return a[..., 0]


def _times(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(a == 0, 0.0, a * b)


def value_and_grad(loss_id: str, first: np.ndarray, second=None, *, reduction: str = "none",
                   **params) -> tuple[np.ndarray, np.ndarray]:
    """Value and d(sum of value)/d(first) computed in ``first.dtype`` arithmetic (float64 arrays)."""
    rd = _Rounded(numpy_dtype(dtype_name(first.dtype)))
    x = first.astype(np.float64)
    y = None
    if second is not None:
        y = second.astype(np.int64) if np.issubdtype(second.dtype, np.integer) else second.astype(np.float64)
    with np.errstate(all="ignore"):
        value, grad, denominator = _LOSSES[loss_id](rd, x, y, params)
        if reduction == "none":
            return value, grad
        if reduction == "sum":
            return rd.sum(value.reshape(-1)), grad
        d = rd(value.size) if denominator is None else denominator
        return rd(rd.sum(value.reshape(-1)) / d), rd(grad * rd(1 / d))


def _smooth(rd: _Rounded, t: np.ndarray, eps: float) -> np.ndarray:
    if not eps:
        return t
    return rd(rd((1 - rd(eps)) * t) + rd(rd(eps) / t.shape[-1]))


def _log_softmax(rd: _Rounded, x: np.ndarray) -> np.ndarray:
    z = rd(x - np.max(x, axis=-1, keepdims=True))
    return rd(z - rd(np.log(rd.sum(rd(np.exp(z))))[..., None]))


def _xent(rd: _Rounded, x: np.ndarray, wt: np.ndarray):
    logp = _log_softmax(rd, x)
    value = -rd.sum(rd(_times(wt, logp)))
    grad = rd(rd(rd.sum(wt)[..., None] * rd(np.exp(logp))) - wt)
    return value, grad


def _weights(rd: _Rounded, params: dict, c: int) -> np.ndarray:
    w = params.get("weight")
    return np.ones(c) if w is None else rd(np.asarray(w, np.float64))


def _softmax_cross_entropy(rd, x, t, params):
    wt = rd(_weights(rd, params, x.shape[-1]) * _smooth(rd, t, params.get("label_smoothing", 0.0)))
    return (*_xent(rd, x, wt), None)


def _sparse_softmax_cross_entropy(rd, x, labels, params):
    c = x.shape[-1]
    w = _weights(rd, params, c)
    onehot = (labels[..., None] == np.arange(c)).astype(np.float64)
    wt = rd(w * _smooth(rd, onehot, params.get("label_smoothing", 0.0)))
    value, grad = _xent(rd, x, wt)
    return value, grad, rd.sum(w[labels].reshape(-1))


def _sigmoid(rd, x):
    return rd(1 / rd(1 + rd(np.exp(-x))))


def _sigmoid_cross_entropy(rd, x, z, params):
    eps = params.get("label_smoothing", 0.0)
    if eps:
        z = rd(rd((1 - rd(eps)) * z) + rd(eps) / 2)
    value = rd(rd(np.maximum(x, 0) - rd(x * z)) + rd(np.log1p(rd(np.exp(-np.abs(x))))))
    return value, rd(_sigmoid(rd, x) - z), None


def _binary_cross_entropy(rd, p, z, _params):
    value = -rd(rd(_times(z, rd(np.log(p)))) + rd(_times(rd(1 - z), rd(np.log(rd(1 - p))))))
    return value, rd(rd(p - z) / rd(p * rd(1 - p))), None


def _categorical_cross_entropy(rd, p, t, _params):
    return -rd.sum(rd(_times(t, rd(np.log(p))))), rd(-t / p), None


def _mean_squared_error(rd, x, y, _params):
    d = rd(x - y)
    return rd(d * d), rd(2 * d), None


def _mean_absolute_error(rd, x, y, _params):
    d = rd(x - y)
    return np.abs(d), np.sign(d), None


def _root_mean_squared_error(rd, x, y, _params):
    d = rd(x - y)
    n = d.size
    value = rd(np.sqrt(rd(rd.sum(rd(d * d).reshape(-1)) / n)))
    return value, rd(d / rd(n * value)), np.float64(1)  # already the mean: divide by 1


def _kl_divergence(rd, q, p, params):
    log_q = q if params.get("log_input", True) else rd(np.log(q))
    value = rd.sum(rd(_times(p, rd(rd(np.log(p)) - log_q))))
    grad = -p if params.get("log_input", True) else rd(-p / q)
    return value, grad, None


def _smooth_labels(rd, y, _second, params):
    eps = params.get("label_smoothing", 0.0)
    return _smooth(rd, y, eps), np.full(y.shape, rd(1 - rd(eps))), None


def _softmax(rd, x, _second, _params):
    z = rd(x - np.max(x, axis=-1, keepdims=True))
    e = rd(np.exp(z))
    p = rd(e / rd.sum(e)[..., None])
    return p, rd(p * rd(1 - rd.sum(p))[..., None]), None


def _log_softmax_loss(rd, x, _second, _params):
    logp = _log_softmax(rd, x)
    return logp, rd(1 - rd(rd(np.exp(logp)) * x.shape[-1])), None


def _sigmoid_loss(rd, x, _second, _params):
    s = _sigmoid(rd, x)
    return s, rd(s * rd(1 - s)), None


_LOSSES = {
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
    "log_softmax": _log_softmax_loss,
    "sigmoid": _sigmoid_loss,
}
