"""A straightforward implementation of each loss *in the dtype under test*, for calibrating kappa.

It is what a careful framework does (max-shifted log-softmax, log1p(exp(-|x|)), pairwise sums), with
every elementary operation rounded to the dtype: each operation is computed in float64 and the result
cast to the dtype (bfloat16 via ml_dtypes). Gradients are what reverse-mode autodiff of the forward
formula computes, each backward operation rounded too (frameworks differentiate the forward formula,
e.g. through log(p / q) or p / sum(p), which rounds more than a closed form); where frameworks ship a
fused backward (log_softmax, softmax, sigmoid) it is that one. Its worst error against the reference, in
units of u * S, calibrates the error model's kappa (``benchmarks/calibrate_kappa.py``).

Parameters ``label_smoothing``, ``weight``, ``log_input`` and the variants' hidden parameters (``clip``,
``normalize``, ``log_offset``, ``log_min``, ``factor``, ``smoothing_denominator``), class axis last; not
a reference: it is meant to be *as inaccurate as a correct implementation may be*.
"""

from __future__ import annotations

import numpy as np

from lossconf.reference.catalog import get_variant
from lossconf.reference.dtypes import dtype_name, numpy_dtype
from lossconf.reference.probability import clip_bounds, constant_in_dtype


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
                   variant: str | None = None, **params) -> tuple[np.ndarray, np.ndarray]:
    """Value and d(sum of value)/d(first) computed in ``first.dtype`` arithmetic (float64 arrays)."""
    if variant is not None:
        params = {**get_variant(variant).overrides, **params}
    params["dtype"] = first.dtype  # constants (clip bounds, offsets) are held in the input's dtype
    params["reduction"] = reduction  # CTC's mean over target lengths scales each sequence first
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


def _smooth(rd: _Rounded, t: np.ndarray, eps: float, denominator: str = "C") -> np.ndarray:
    if not eps:
        return t
    c = t.shape[-1]
    if denominator == "C":
        return rd(rd((1 - rd(eps)) * t) + rd(rd(eps) / c))
    spread = rd(rd(rd(eps) / (c - 1)) * rd(1 - t)) if c > 1 else 0.0
    return rd(rd((1 - rd(eps)) * t) + spread)


def _smoothing(params: dict) -> tuple[float, str]:
    return params.get("label_smoothing", 0.0), params.get("smoothing_denominator", "C")


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
    wt = rd(_weights(rd, params, x.shape[-1]) * _smooth(rd, t, *_smoothing(params)))
    return (*_xent(rd, x, wt), None)


def _sparse_softmax_cross_entropy(rd, x, labels, params):
    c = x.shape[-1]
    w = _weights(rd, params, c)
    onehot = (labels[..., None] == np.arange(c)).astype(np.float64)
    wt = rd(w * _smooth(rd, onehot, *_smoothing(params)))
    value, grad = _xent(rd, x, wt)
    return value, grad, rd.sum(w[labels].reshape(-1))


def _sigmoid(rd, x):
    return rd(1 / rd(1 + rd(np.exp(-x))))


def _sigmoid_cross_entropy(rd, x, z, params):
    eps = params.get("label_smoothing", 0.0)
    if eps:
        z = rd(rd((1 - rd(eps)) * z) + rd(eps) / 2)
    e = rd(np.exp(-np.abs(x)))
    value = rd(rd(np.maximum(x, 0) - rd(x * z)) + rd(np.log1p(e)))
    # autodiff: relu' - z + (d log1p(e) / de) e (d(-|x|) / dx), both derivatives taken on the x >= 0 side
    # at 0 as TensorFlow's where(x >= 0, ...) form does (sign(0) = 0 would drop the softplus term)
    up = x >= 0
    softplus_part = rd(np.where(up, -1.0, 1.0) * rd(rd(1 / rd(1 + e)) * e))
    return value, rd(rd(up - z) + softplus_part), None


def _clip_and_offset(p, params):
    """(p' = clip(p, lo, hi), log offset o, dp'/dp as 0/1) with the variant's constants held in the dtype."""
    inside = np.ones(p.shape)
    if params.get("clip") is not None:
        lo, hi = clip_bounds(params["clip"], params["dtype"])
        inside = ((p >= lo) & (p <= hi)).astype(np.float64)
        p = np.clip(p, lo, hi)
    o = constant_in_dtype(params.get("log_offset") or 0.0, params["dtype"])
    return p, o, inside


def _binary_cross_entropy(rd, p, z, params):
    p, o, inside = _clip_and_offset(p, params)
    arg_p, arg_1mp = rd(p + o), rd(rd(1 - p) + o)
    log_p, log_1mp = rd(np.log(arg_p)), rd(np.log(arg_1mp))
    pass_p = pass_1mp = inside
    if params.get("log_min") is not None:  # torch clamps each log at -100; its gradient stops there
        pass_p, pass_1mp = inside * (log_p >= params["log_min"]), inside * (log_1mp >= params["log_min"])
        log_p, log_1mp = np.maximum(log_p, params["log_min"]), np.maximum(log_1mp, params["log_min"])
    zc = rd(1 - z)
    value = -rd(rd(_times(z, log_p)) + rd(_times(zc, log_1mp)))
    # autodiff: -z / (p' + o) from the first log, + (1 - z) / (1 - p' + o) from the second (d(1 - p')/dp' = -1)
    term_p = np.where(pass_p * z != 0, rd(-z / arg_p), 0.0)
    term_1mp = np.where(pass_1mp * zc != 0, rd(zc / arg_1mp), 0.0)
    return value, rd(term_p + term_1mp), None


def _categorical_cross_entropy(rd, p, t, params):
    total = rd.sum(p)[..., None] if params.get("normalize") else None
    q = rd(p / total) if params.get("normalize") else p
    q, _, inside = _clip_and_offset(q, params)
    value = -rd.sum(rd(_times(t, rd(np.log(q)))))
    g_q = np.where(inside * t != 0, rd(-t / q), 0.0)
    if total is None:
        return value, g_q, None
    # autodiff of p / sum(p): g_q / s for the numerator, sum(g_q * (-p / s / s)) for s, broadcast to every p
    g_total = rd.sum(rd(g_q * rd(rd(-p / total) / total)))
    return value, rd(rd(g_q / total) + g_total[..., None]), None


def _mean_squared_error(rd, x, y, params):
    factor = params.get("factor", 1.0)
    d = rd(x - y)
    return rd(factor * rd(d * d)), rd(rd(2 * factor) * d), None


def _mean_absolute_error(rd, x, y, _params):
    d = rd(x - y)
    return np.abs(d), np.sign(d), None


def _root_mean_squared_error(rd, x, y, _params):
    d = rd(x - y)
    n = d.size
    value = rd(np.sqrt(rd(rd.sum(rd(d * d).reshape(-1)) / n)))
    # autodiff: sqrt' = 0.5 / value, mean' = 1 / n, (d^2)' = 2 d
    g_mean = rd(rd(0.5 / value) / n)
    return value, rd(rd(2 * d) * g_mean), np.float64(1)  # already the mean: divide by 1


def _kl_divergence(rd, q, p, params):
    if params.get("log_input", True):  # p (log p - log q): the gradient -p is exact
        value = rd.sum(rd(_times(p, rd(rd(np.log(p)) - q))))
        return value, -p, None
    inside = np.ones(q.shape)
    if params.get("clip") is not None:  # Keras: p and q clipped to [lo, 1], then p log(p / q)
        lo = constant_in_dtype(params["clip"], params["dtype"])
        inside = (q >= lo).astype(np.float64)
        p, q = np.clip(p, lo, 1), np.clip(q, lo, 1)
    ratio = rd(p / q)
    value = rd.sum(rd(_times(p, rd(np.log(ratio)))))
    # autodiff through log(p / q): (p / ratio) * d(p / q)/dq, the latter as -p / q / q
    g_q = rd(rd(p / ratio) * rd(rd(-p / q) / q))
    return value, np.where(inside * p != 0, g_q, 0.0), None


def _smooth_labels(rd, y, _second, params):
    eps, denominator = _smoothing(params)
    slope = rd(1 - rd(eps))
    if denominator == "C-1" and y.shape[-1] > 1:
        slope = rd(slope - rd(rd(eps) / (y.shape[-1] - 1)))
    return _smooth(rd, y, eps, denominator), np.full(y.shape, slope), None


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


def linear_cross_entropy(first: np.ndarray, second: np.ndarray, *, reduction: str = "none",
                         variant: str | None = None, linear_weight: np.ndarray, linear_bias=None,
                         **params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(value, d/dh, d/dW): logits = h W^T (+ b), then sparse cross-entropy in the dtype; the three
    products accumulate as a mixed-precision GEMM does (``accumulation_dtype``), rounded to the dtype."""
    from lossconf.reference.linear import accumulation_dtype

    rd = _Rounded(numpy_dtype(dtype_name(first.dtype)))
    acc = accumulation_dtype(first.dtype)

    def matmul(a, b):
        return rd(np.matmul(np.asarray(a).astype(acc), np.asarray(b).astype(acc)).astype(np.float64))

    z = matmul(first, linear_weight.T)
    if linear_bias is not None:
        z = rd(z + linear_bias.astype(np.float64))
    value, g = value_and_grad("sparse_softmax_cross_entropy", z.astype(first.dtype), second,
                              reduction=reduction, variant=variant, **params)
    return value, matmul(g, linear_weight), matmul(g.T, first)


def _sigmoid_focal_loss(rd, x, z, params):
    """torchvision / optax form: ce * (1 - p_t)^gamma with p_t = p z + (1 - p)(1 - z) formed naively."""
    gamma, alpha = params.get("gamma", 2.0), params.get("alpha")
    ce, ce_grad, _ = _sigmoid_cross_entropy(rd, x, z, {})
    e = rd(np.exp(-np.abs(x)))  # sigmoid through exp(-|x|): exp(-x) overflows float16 below x = -11.1
    p = np.where(x >= 0, rd(1 / rd(1 + e)), rd(e / rd(1 + e)))
    zc = rd(1 - z)
    q = rd(1 - rd(rd(p * z) + rd(rd(1 - p) * zc)))
    focal = rd(np.power(q, gamma))
    a_t = 1.0 if alpha is None else rd(rd(alpha * z) + rd(rd(1 - alpha) * zc))
    value = rd(a_t * rd(focal * ce))
    # autodiff: ce' focal + ce gamma q^(gamma-1) q', q' = -(z - (1 - z)) p (1 - p), p' from the sigmoid backward
    with np.errstate(divide="ignore", invalid="ignore"):
        dfocal = np.where(gamma == 0, 0.0, rd(gamma * rd(np.power(q, gamma - 1))))
    dq = rd(rd(rd(1 - rd(2 * z))) * rd(p * rd(1 - p)))
    grad = rd(a_t * rd(rd(ce_grad * focal) + np.where(ce == 0, 0.0, rd(rd(ce * dfocal) * dq))))
    return value, grad, None


def _cosine_similarity(rd, x, y, params):
    """optax's form: a / sqrt(max(sum a^2, floor^2)) times the same of b, summed; autodiff through it."""
    floor = params.get("norm_floor")
    f2 = 0.0 if floor is None else rd(constant_in_dtype(floor, params["dtype"]) ** 2)
    nx = rd(np.sqrt(np.maximum(rd.sum(rd(x * x)), f2)))[..., None]
    ny = rd(np.sqrt(np.maximum(rd.sum(rd(y * y)), f2)))[..., None]
    xu, yu = rd(x / nx), rd(y / ny)
    c = rd.sum(rd(xu * yu))
    sign, offset = params.get("sign", 1.0), params.get("offset", 0.0)
    # autodiff: d/dx (x / nx) . yu = yu / nx - x (x . yu) / nx^3, the cube as three divisions (the clamp stops
    # the second term)
    live = (rd.sum(rd(x * x)) >= f2)[..., None]
    proj = rd.sum(rd(x * yu))[..., None]
    g = rd(rd(yu / nx) - np.where(live, rd(x * rd(rd(rd(proj / nx) / nx) / nx)), 0.0))
    return rd(offset + sign * c), rd(sign * g), None


def _huber(rd, x, y, params):
    delta = rd(params.get("delta", 1.0))
    d = rd(x - y)
    ad, inner = np.abs(d), np.abs(d) <= delta
    # Keras's form: the linear side as delta |d| - delta^2 / 2
    value = np.where(inner, rd(0.5 * rd(d * d)), rd(rd(delta * ad) - rd(0.5 * rd(delta * delta))))
    return value, np.where(inner, d, delta * np.sign(d)), None


def _smooth_l1(rd, x, y, params):
    beta = rd(params.get("beta", 1.0))
    d = rd(x - y)
    ad = np.abs(d)
    if beta == 0:
        return ad, np.sign(d), None
    inner = ad < beta
    value = np.where(inner, rd(rd(0.5 * rd(d * d)) / beta), rd(ad - rd(0.5 * beta)))
    return value, np.where(inner, rd(d / beta), np.sign(d)), None


def _log_cosh(rd, x, y, _params):
    d = rd(x - y)
    z = rd(-2 * d)
    e = rd(np.exp(-np.abs(z)))
    softplus = rd(np.maximum(z, 0) + rd(np.log1p(e)))
    value = rd(rd(d + softplus) - rd(np.log(2)))  # Keras: x + softplus(-2 x) - log 2
    # autodiff: 1 + softplus'(z) * (-2), softplus'(z) = sigmoid(z) as exp(z - softplus(z))
    sig = rd(np.exp(rd(z - softplus)))
    return value, rd(1 - rd(2 * sig)), None


def _margin(rd, x, y):
    return rd(1 - rd(y * x))


def _hinge(rd, x, y, params):
    m = _margin(rd, x, y)
    slope = np.where(m > 0, 1.0, np.where(m == 0, params.get("kink", 0.0), 0.0))
    return np.maximum(m, 0), rd(-y * slope), None


def _squared_hinge(rd, x, y, _params):
    a = np.maximum(_margin(rd, x, y), 0)
    return rd(a * a), rd(rd(2 * a) * -y), None


def _poisson_nll(rd, x, y, params):
    if params.get("log_input", True):
        e = rd(np.exp(x))
        value, grad = rd(e - rd(_times(y, x))), rd(e - y)
    else:
        arg = rd(x + constant_in_dtype(params.get("log_offset") or 0.0, params["dtype"]))
        value = rd(x - rd(_times(y, rd(np.log(arg)))))
        grad = rd(1 - np.where(y == 0, 0.0, rd(y / arg)))
    if params.get("full"):  # torch and TF: y log y - y + 0.5 log(2 pi y) where y > 1
        ys = np.where(y > 1, y, 1.0)
        st = rd(rd(rd(ys * rd(np.log(ys))) - ys) + rd(0.5 * rd(np.log(rd(rd(2 * np.pi) * ys)))))
        value = rd(value + np.where(y > 1, st, 0.0))
    return value, grad, None


def _ctc(rd, x, labels, params):
    """torch's CPU kernel in the dtype: log_softmax, alpha and beta in log space (max-shifted log-sum-exp of the
    two or three predecessors), gradient exp(lp) - sum over states of exp(alpha + beta - lp + l)."""
    from lossconf.reference.sequence import extended, needed_frames, skip_allowed

    n, t_max, c = x.shape
    blank, zero_inf = int(params.get("blank", 0)), bool(params.get("zero_infinity", False))
    t_len = params.get("input_lengths")
    l_len = params.get("target_lengths")
    t_len = np.full(n, t_max) if t_len is None else np.asarray(t_len)
    l_len = np.full(n, labels.shape[1]) if l_len is None else np.asarray(l_len)

    def lse(terms):
        terms = np.stack(terms)
        m = np.max(terms, axis=0)
        safe = np.where(np.isfinite(m), m, 0.0)
        return rd(safe + rd(np.log(rd(np.sum(rd(np.exp(rd(terms - safe))), axis=0)))))

    value, grad = np.zeros(n), np.zeros(x.shape)
    for i in range(n):
        ti, lab = int(t_len[i]), labels[i, : int(l_len[i])]
        if needed_frames(lab) > ti:
            value[i] = 0.0 if zero_inf else np.inf
            continue
        if ti == 0:
            continue
        xi = x[i, :ti]
        m = np.max(xi, axis=1, keepdims=True)
        lp = rd(rd(xi - m) - rd(np.log(rd.sum(rd(np.exp(rd(xi - m)))))[:, None]))
        ext = extended(lab, blank)
        skip, ns = skip_allowed(ext), len(ext)
        skip_next = np.append(skip[2:], [False, False])[:ns]
        emit = lp[:, ext]
        alpha, beta = np.full((ti, ns), -np.inf), np.full((ti, ns), -np.inf)
        alpha[0, :2] = emit[0, :2]
        for t in range(1, ti):
            a = alpha[t - 1]
            one = np.append(-np.inf, a[:-1])
            two = np.where(skip, np.append([-np.inf, -np.inf], a[:-2])[:ns], -np.inf)
            alpha[t] = rd(lse([a, one, two]) + emit[t])
        beta[-1, -2:] = emit[-1, -2:]
        for t in range(ti - 2, -1, -1):
            b = beta[t + 1]
            one = np.append(b[1:], -np.inf)[:ns]
            two = np.where(skip_next, np.append(b[2:], [-np.inf, -np.inf])[:ns], -np.inf)
            beta[t] = rd(lse([b, one, two]) + emit[t])
        log_p = lse([alpha[-1, -1], alpha[-1, -2]]) if ns > 1 else alpha[-1, -1]
        value[i] = -log_p
        post = rd(np.exp(rd(rd(rd(alpha + beta) - emit) - log_p)))
        gamma = np.zeros((ti, c))
        for s_, k in enumerate(ext):
            gamma[:, k] = rd(gamma[:, k] + post[:, s_])
        grad[i, :ti] = rd(rd(np.exp(lp)) - gamma)
    if params["reduction"] == "mean" and params.get("mean_per_target_length"):
        per = np.maximum(l_len, 1)
        value = rd(value / per)
        grad = rd(grad / per[:, None, None])
    return value, grad, None


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
    "sigmoid_focal_loss": _sigmoid_focal_loss,
    "cosine_similarity": _cosine_similarity,
    "huber": _huber,
    "smooth_l1": _smooth_l1,
    "log_cosh": _log_cosh,
    "hinge": _hinge,
    "squared_hinge": _squared_hinge,
    "poisson_nll": _poisson_nll,
    "ctc": _ctc,
}
