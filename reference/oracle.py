"""The mpmath oracle: every catalog loss in arbitrary precision, to check the NumPy reference.

Same arguments and semantics as ``lossconf.reference.numpy_ref.value_and_grad`` (the call is
validated by the same ``prepare``), written as directly as the formulas read: ``log_softmax = x -
log(sum(exp(x)))`` at ``DIGITS`` significant digits, so cancellation costs nothing. Slow (pure
Python, one sample at a time); meant for small test inputs. Results are NumPy object arrays of
``mpmath.mpf`` with the reference's shapes.
"""

from __future__ import annotations

import mpmath
import numpy as np
from mpmath import mp, mpf

from lossconf.reference.numpy_ref import Call, prepare
from lossconf.reference.probability import clip_bounds, constant_in_dtype

DIGITS = 60
INF, NAN = mpf("inf"), mpf("nan")


def value_and_grad(loss_id: str, first, second=None, *, reduction: str = "none", variant: str | None = None,
                   **params) -> tuple[np.ndarray, np.ndarray]:
    """Value and d(sum of value)/d(first) as object arrays of mpf (``DIGITS`` significant digits)."""
    call = prepare(loss_id, first, second, reduction=reduction, variant=variant, **params)
    with mp.workdps(DIGITS):
        return _ORACLES[call.loss.id](call)


def to_mpf(a) -> np.ndarray:
    """Exact conversion of a float/int array (any dtype incl. bfloat16, longdouble) to mpf objects.

    Call inside ``mp.workdps(DIGITS)`` for longdouble (its two float64 halves are added in mpmath).
    """
    a = np.asarray(a)
    flat = [mpf(float(v)) if a.dtype != np.longdouble else _longdouble_to_mpf(v) for v in a.reshape(-1)]
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out.reshape(a.shape)


def _longdouble_to_mpf(v: np.longdouble) -> mpf:
    """Exact: the sum of float64 pieces (two for x87 extended, three for IEEE quad)."""
    total, rest = mpf(0), v
    while True:
        piece = np.float64(rest)
        if not np.isfinite(piece):
            return mpf(float(piece))
        total += mpf(float(piece))
        rest = rest - np.longdouble(piece)
        if rest == 0 or piece == 0:
            return total


def _isnan(v: mpf) -> bool:
    return mpmath.isnan(v)


def _times(a: mpf, b: mpf) -> mpf:
    """a * b with 0 * inf = 0 (0 log 0 = 0); NaN stays NaN."""
    if a == 0 and not _isnan(b):
        return mpf(0)
    return a * b


def _log(v: mpf) -> mpf:
    if _isnan(v):
        return NAN
    if v == 0:
        return -INF
    return mpmath.log(v) if v > 0 else NAN


def _log1p(v: mpf) -> mpf:
    """log(1 + v) without forming 1 + v (which would lose a v below 10^-DIGITS)."""
    if _isnan(v) or v < -1:
        return NAN
    return -INF if v == -1 else mpmath.log1p(v)


def _rows(call: Call):
    """(x rows, second rows) as lists of lists of mpf, class axis last; labels stay ints."""
    x = np.moveaxis(to_mpf(call.first), call.axis, -1)
    x2 = x.reshape(-1, x.shape[-1]) if x.shape[-1] else x.reshape(0, 0)
    sec = None
    if call.second is not None:
        if call.loss.inputs[1].role == "labels":
            sec = [int(v) for v in call.second.reshape(-1)]
        else:
            sec = np.moveaxis(to_mpf(call.second), call.axis, -1).reshape(x2.shape).tolist()
    return x2.tolist(), sec


def _unrows(values, call: Call, per_sample: bool):
    moved = np.moveaxis(call.first, call.axis, -1).shape
    out = np.empty(len(values) * (1 if per_sample else moved[-1]), dtype=object)
    out[:] = [v for row in values for v in ([row] if per_sample else row)]
    if per_sample:
        return out.reshape(moved[:-1])
    return np.moveaxis(out.reshape(moved), -1, call.axis)


def _reduce(call: Call, value: np.ndarray, grad: np.ndarray, denominator: mpf | None = None):
    if call.reduction == "none":
        return value, grad
    total = mpmath.fsum(value.reshape(-1)) if value.size else mpf(0)
    d = mpf(1) if call.reduction == "sum" else (mpf(value.size) if denominator is None else denominator)
    div = np.vectorize(lambda g: g / d if d != 0 else (NAN if g == 0 else g * INF), otypes=[object])
    mean = total / d if d != 0 else NAN
    return np.array(mean, dtype=object), (div(grad) if grad.size else grad)


def _smooth(t: list, call: Call) -> list:
    eps = mpf(call.params.get("label_smoothing", 0.0))
    c = len(t)
    if call.params.get("smoothing_denominator", "C") == "C":
        return [(1 - eps) * v + eps / c for v in t]
    return [(1 - eps) * v + (eps / (c - 1) * (1 - v) if c > 1 else 0) for v in t]


def _log_softmax(x: list) -> list:
    """x - log(sum exp x), with the limits for +-inf logits and NaN for NaN rows."""
    if any(_isnan(v) for v in x):
        return [NAN] * len(x)
    m = max(x)
    if m == INF:  # the +inf classes share the mass equally
        k = sum(1 for v in x if v == INF)
        return [-mpmath.log(k) if v == INF else -INF for v in x]
    if m == -INF:
        return [NAN] * len(x)
    a = x.index(m)
    # log1p of the off-max mass: log(1 + tiny) would need more digits than DIGITS when tiny < 1e-60
    log_sum = mpmath.log1p(mpmath.fsum(mpmath.exp(v - m) for c, v in enumerate(x) if c != a))
    return [(v - m) - log_sum for v in x]  # v - m is exact, so tiny log_sum is not absorbed


def _xent_row(x: list, wt: list) -> tuple[mpf, list]:
    """-sum wt_c log_softmax(x)_c and its gradient sum(wt) softmax(x) - wt."""
    if any(_isnan(v) for v in wt):
        return NAN, [NAN] * len(x)
    logp = _log_softmax(x)
    value = -mpmath.fsum(_times(w, lp) for w, lp in zip(wt, logp, strict=True))
    total = mpmath.fsum(wt)
    grad = [total * mpmath.exp(lp) - w for w, lp in zip(wt, logp, strict=True)]
    return value, grad


def _weights(call: Call, c: int) -> list:
    w = call.params.get("weight")
    return [mpf(1)] * c if w is None else list(to_mpf(w))


def _softmax_cross_entropy(call: Call):
    xs, ts = _rows(call)
    w = _weights(call, len(xs[0]) if xs else 0)
    out = [_xent_row(x, [wc * tc for wc, tc in zip(w, _smooth(t, call), strict=True)])
           for x, t in zip(xs, ts, strict=True)]
    value = _unrows([o[0] for o in out], call, True)
    grad = _unrows([o[1] for o in out], call, False)
    return _reduce(call, value, grad)


def _sparse_softmax_cross_entropy(call: Call):
    return _sparse_from_rows(call, _rows(call)[0])


def _sparse_from_rows(call: Call, xs: list):
    labels = [int(v) for v in call.second.reshape(-1)]
    c = call.first.shape[call.axis]
    w = _weights(call, c)
    ignore = call.params.get("ignore_index")
    out, kept = [], []
    for x, y in zip(xs, labels, strict=True):
        if ignore is not None and y == ignore:
            out.append((mpf(0), [mpf(0)] * c))
            continue
        kept.append(y)
        onehot = [mpf(int(k == y)) for k in range(c)]
        out.append(_xent_row(x, [wc * tc for wc, tc in zip(w, _smooth(onehot, call), strict=True)]))
    value = _unrows([o[0] for o in out], call, True)
    grad = _unrows([o[1] for o in out], call, False)
    if call.params["mean_denominator"] == "count":
        denom = mpf(len(kept))
    else:
        denom = mpmath.fsum(w[y] for y in kept) if kept else mpf(0)
    value, grad = _reduce(call, value, grad, denom)
    if call.reduction == "mean" and not kept:
        if call.params["all_ignored"] == "zero":
            value = np.array(mpf(0), dtype=object)
        grad = _zeros(grad.shape)
    return value, grad


def _zeros(shape) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    out.reshape(-1)[:] = [mpf(0)] * out.size
    return out


def _rowwise_elementwise(call: Call, row_fn):
    """Apply row_fn(row) -> (values, grads) to every class row; values keep the input's shape."""
    xs, _ = _rows(call)
    out = [row_fn(x) for x in xs]
    return _unrows([o[0] for o in out], call, False), _unrows([o[1] for o in out], call, False)


def _softmax(call: Call):
    def row(x):
        lp = _log_softmax(x)
        return [mpmath.exp(v) for v in lp], [NAN if _isnan(v) else mpf(0) for v in lp]

    return _rowwise_elementwise(call, row)


def _log_softmax_loss(call: Call):
    def row(x):
        lp = _log_softmax(x)
        return lp, [1 - len(x) * mpmath.exp(v) for v in lp]

    return _rowwise_elementwise(call, row)


def _smooth_labels(call: Call):
    eps = mpf(call.params["label_smoothing"])

    def row(y):
        c = len(y)
        slope = 1 - eps - (eps / (c - 1) if call.params["smoothing_denominator"] == "C-1" and c > 1 else 0)
        return _smooth(y, call), [NAN if _isnan(v) else slope for v in y]

    return _rowwise_elementwise(call, row)


def _clip(v: mpf, lo: mpf, hi: mpf) -> tuple[mpf, bool]:
    if _isnan(v):
        return v, True
    return min(max(v, lo), hi), lo <= v <= hi


def _categorical_cross_entropy(call: Call):
    xs, ts = _rows(call)
    clip, normalize = call.params.get("clip"), call.params.get("normalize", False)
    values, grads = [], []
    for p, t in zip(xs, ts, strict=True):
        if any(_isnan(v) for v in p + t):
            values.append(NAN)
            grads.append([NAN] * len(p))
            continue
        total = mpmath.fsum(p) if normalize else mpf(1)
        q = [v / total for v in p]
        inside = [True] * len(q)
        if clip is not None:
            lo, hi = (mpf(b) for b in clip_bounds(clip, call.first.dtype))
            q, inside = zip(*[_clip(v, lo, hi) for v in q], strict=True)
        values.append(-mpmath.fsum(_times(tc, _log(qc)) for tc, qc in zip(t, q, strict=True)))
        g = [(-tc / qc if qc != 0 else -INF * mpmath.sign(tc)) if ok and tc != 0 else mpf(0)
             for tc, qc, ok in zip(t, q, inside, strict=True)]
        if normalize:
            kept_t = mpmath.fsum(tc for tc, ok in zip(t, inside, strict=True) if ok)
            g = [(gc + kept_t) / total for gc in g]
        grads.append(g)
    return _reduce(call, _unrows(values, call, True), _unrows(grads, call, False))


def _kl_divergence(call: Call):
    xs, ps = _rows(call)
    clip, log_input = call.params.get("clip"), call.params["log_input"]
    values, grads = [], []
    for q, p in zip(xs, ps, strict=True):
        if any(_isnan(v) for v in q + p):
            values.append(NAN)
            grads.append([NAN] * len(q))
            continue
        inside = [True] * len(q)
        if clip is not None:  # both clipped to [fl_d(clip), 1]
            lo = mpf(constant_in_dtype(clip, call.first.dtype))
            p = [min(max(v, lo), mpf(1)) for v in p]
            q, inside = zip(*[_clip(v, lo, mpf(1)) for v in q], strict=True)
        log_q = list(q) if log_input else [_log(v) for v in q]
        # 0 log(0 / q) = 0 for every q, also q = 0 (log q = -inf)
        values.append(mpmath.fsum(pc * (_log(pc) - lq) if pc != 0 else mpf(0)
                                  for pc, lq in zip(p, log_q, strict=True)))
        if log_input:
            grads.append([-pc for pc in p])
        else:
            grads.append([(-pc / qc if qc != 0 else -INF * mpmath.sign(pc)) if ok and pc != 0 else mpf(0)
                          for pc, qc, ok in zip(p, q, inside, strict=True)])
    return _reduce(call, _unrows(values, call, True), _unrows(grads, call, False))


def _elementwise(call: Call, fn):
    """fn(x, y, pos_weight) -> (value, grad) per element; second/pos_weight broadcast to first."""
    shape = call.first.shape
    x = to_mpf(call.first).reshape(-1)
    y = to_mpf(np.broadcast_to(call.second, shape)).reshape(-1) if call.second is not None else [None] * x.size
    pw = call.params.get("pos_weight")
    pw = to_mpf(np.broadcast_to(pw, shape)).reshape(-1) if pw is not None else [mpf(1)] * x.size
    out = [fn(a, b, c) if not (_isnan(a) or (b is not None and _isnan(b))) else (NAN, NAN)
           for a, b, c in zip(x, y, pw, strict=True)]
    value, grad = np.empty(x.size, dtype=object), np.empty(x.size, dtype=object)
    value[:] = [o[0] for o in out]
    grad[:] = [o[1] for o in out]
    return _reduce(call, value.reshape(shape), grad.reshape(shape))


def _softplus(x: mpf) -> mpf:
    if x == INF:
        return INF
    return mpmath.log1p(mpmath.exp(x)) if x != -INF else mpf(0)


def _sigmoid(x: mpf) -> mpf:
    if x == INF:
        return mpf(1)
    if x == -INF:
        return mpf(0)
    return 1 / (1 + mpmath.exp(-x))


def _sigmoid_cross_entropy(call: Call):
    eps = mpf(call.params["label_smoothing"])

    def fn(x, z, pw):
        z = (1 - eps) * z + eps / 2
        value = _times(pw * z, _softplus(-x)) + _times(1 - z, _softplus(x))
        return value, _times(1 - z, _sigmoid(x)) - _times(pw * z, _sigmoid(-x))

    return _elementwise(call, fn)


def _binary_cross_entropy(call: Call):
    clip, log_min = call.params.get("clip"), call.params.get("log_min")
    o = mpf(constant_in_dtype(call.params.get("log_offset") or 0, call.first.dtype))
    bounds = None if clip is None else [mpf(b) for b in clip_bounds(clip, call.first.dtype)]

    def fn(p, z, _pw):
        inside = True
        if bounds is not None:
            p, inside = _clip(p, *bounds)
        log_p, log_1mp = _log(p + o), _log1p(o - p)
        pass_p = pass_1mp = inside
        if log_min is not None:
            pass_p, pass_1mp = inside and log_p >= log_min, inside and log_1mp >= log_min
            log_p, log_1mp = max(log_p, mpf(log_min)), max(log_1mp, mpf(log_min))
        value = -(_times(z, log_p) + _times(1 - z, log_1mp))
        g = mpf(0)
        if pass_p and z != 0:
            g += -z / (p + o) if p + o != 0 else -INF
        if pass_1mp and z != 1:
            g += (1 - z) / (1 - p + o) if 1 - p + o != 0 else INF
        return value, g

    return _elementwise(call, fn)


def _mean_squared_error(call: Call):
    factor = mpf(call.params["factor"])
    return _elementwise(call, lambda x, y, _: (factor * (x - y) ** 2, 2 * factor * (x - y)))


def _mean_absolute_error(call: Call):
    return _elementwise(call, lambda x, y, _: (abs(x - y), mpf(mpmath.sign(x - y))))


def _root_mean_squared_error(call: Call):
    x = to_mpf(call.first)
    d = (x - to_mpf(np.broadcast_to(call.second, call.first.shape))).reshape(-1)
    n = d.size
    value = mpmath.sqrt(mpmath.fsum(v * v for v in d) / n) if n else NAN
    grad = np.empty(n, dtype=object)
    grad[:] = [v / (n * value) if value != 0 else NAN for v in d]
    return np.array(value, dtype=object), grad.reshape(call.first.shape)


def _sigmoid_loss(call: Call):
    def fn(x, _y, _pw):
        s = _sigmoid(x)
        return s, s * _sigmoid(-x)

    return _elementwise(call, fn)


def linear_cross_entropy(first, second, *, reduction: str = "none", variant: str | None = None, **params):
    """(value, d/dh, d/dW) of linear_cross_entropy: exact logits h W^T + b, then sparse CE (mpf arrays)."""
    call = prepare("linear_cross_entropy", first, second, reduction=reduction, variant=variant, **params)
    with mp.workdps(DIGITS):
        return _linear_cross_entropy(call)


def _linear_cross_entropy(call: Call):
    h, w = to_mpf(call.first), to_mpf(call.params["linear_weight"])
    b = call.params.get("linear_bias")
    z = h.dot(w.T) + (to_mpf(b) if b is not None else 0)  # object arrays: exact sums at DIGITS
    logits_call = prepare("sparse_softmax_cross_entropy", np.zeros(z.shape), call.second, **{
        k: v for k, v in call.params.items() if k not in ("linear_weight", "linear_bias")})
    logits_call.first, logits_call.reduction = z, call.reduction
    value, g = _sparse_from_rows(logits_call, z.tolist())
    return value, g.dot(w), g.T.dot(h)


def _sigmoid_focal_loss(call: Call):
    alpha, gamma = call.params["alpha"], mpf(call.params["gamma"])

    def fn(x, z, _pw):
        p, pn = _sigmoid(x), _sigmoid(-x)
        ce = _times(z, _softplus(-x)) + _times(1 - z, _softplus(x))
        q = z * pn + (1 - z) * p
        a_t = mpf(1) if alpha is None else mpf(alpha) * z + (1 - mpf(alpha)) * (1 - z)
        focus = _times(gamma * (1 - 2 * z) * p * pn * ce, q ** (gamma - 1) if q != 0 else INF)
        grad = a_t * (focus + q**gamma * ((1 - z) * p - z * pn))
        return a_t * _times(q**gamma, ce), grad

    return _elementwise(call, fn)


def _cosine_similarity(call: Call):
    xs, ys = _rows(call)
    p = call.params
    floor = None if p["norm_floor"] is None else mpf(constant_in_dtype(p["norm_floor"], call.first.dtype))
    sign, offset = mpf(p["sign"]), mpf(p["offset"])
    values, grads = [], []
    for x, y in zip(xs, ys, strict=True):
        if any(_isnan(v) for v in x + y):
            values.append(NAN)
            grads.append([NAN] * len(x))
            continue
        dot = mpmath.fsum(a * b for a, b in zip(x, y, strict=True))
        nx2, ny2 = mpmath.fsum(a * a for a in x), mpmath.fsum(b * b for b in y)
        if floor is not None and p["floor_product"]:
            clamped = nx2 * ny2 < floor**2
            n = floor if clamped else mpmath.sqrt(nx2 * ny2)
            c = dot / n
            g = [b / n - (0 if clamped else c * a / nx2) for a, b in zip(x, y, strict=True)]
        else:
            x_clamped = floor is not None and nx2 < floor**2
            nx = floor if x_clamped else mpmath.sqrt(nx2)
            ny = mpmath.sqrt(ny2) if floor is None else max(mpmath.sqrt(ny2), floor)
            if nx == 0 or ny == 0:
                values.append(NAN)
                grads.append([NAN] * len(x))
                continue
            c = dot / (nx * ny)
            g = [b / (nx * ny) - (0 if x_clamped else c * a / nx2) for a, b in zip(x, y, strict=True)]
        values.append(offset + sign * c)
        grads.append([sign * gc for gc in g])
    return _reduce(call, _unrows(values, call, True), _unrows(grads, call, False))


def _huber(call: Call):
    delta = mpf(call.params["delta"])

    def fn(x, y, _pw):
        d = x - y
        if abs(d) <= delta:
            return d * d / 2, d
        return delta * (abs(d) - delta / 2), delta * mpmath.sign(d)

    return _elementwise(call, fn)


def _smooth_l1(call: Call):
    beta = mpf(call.params["beta"])

    def fn(x, y, _pw):
        d = x - y
        if abs(d) < beta:
            return d * d / (2 * beta), d / beta
        return abs(d) - beta / 2, mpf(mpmath.sign(d))

    return _elementwise(call, fn)


def _log_cosh(call: Call):
    def fn(x, y, _pw):
        d = x - y
        if mpmath.isinf(d):
            return INF, mpf(mpmath.sign(d))
        return mpmath.log(mpmath.cosh(d)), mpmath.tanh(d)

    return _elementwise(call, fn)


def _hinge(call: Call):
    kink = mpf(call.params["kink"])

    def fn(x, y, _pw):
        m = 1 - y * x
        return max(m, mpf(0)), (-y if m > 0 else -kink * y if m == 0 else mpf(0))

    return _elementwise(call, fn)


def _squared_hinge(call: Call):
    def fn(x, y, _pw):
        m = max(1 - y * x, mpf(0))
        return m * m, -2 * y * m

    return _elementwise(call, fn)


def _poisson_nll(call: Call):
    log_input, full = call.params["log_input"], call.params["full"]
    o = mpf(0 if log_input else constant_in_dtype(call.params.get("log_offset") or 0, call.first.dtype))

    def fn(x, y, _pw):
        if log_input:
            value, grad = mpmath.exp(x) - _times(y, x), mpmath.exp(x) - y
        else:
            value = x - _times(y, _log(x + o))
            grad = mpf(1) if y == 0 else (1 - y / (x + o) if x + o != 0 else -INF)
        if full and y > 1:
            value += y * mpmath.log(y) - y + mpmath.log(2 * mpmath.pi * y) / 2
        return value, grad

    return _elementwise(call, fn)


# Exhaustive enumeration of alignments up to this many paths per sequence (C^T); beyond it the oracle sums
# the same alignments by dynamic programming over the extended target, in probabilities (no logs).
MAX_ENUMERATED_PATHS = 4096


def _collapse(path: tuple, blank: int) -> tuple:
    """B: merge repeats, then drop blanks."""
    out, prev = [], None
    for k in path:
        if k != prev and k != blank:
            out.append(k)
        prev = k
    return tuple(out)


def _ctc_enumerated(probs: list, labels: tuple, blank: int) -> tuple:
    """(p, gamma [T][C]) by summing every path of C^T whose collapse is ``labels``."""
    import itertools

    t_len, c = len(probs), len(probs[0])
    total, gamma = mpf(0), [[mpf(0)] * c for _ in range(t_len)]
    for path in itertools.product(range(c), repeat=t_len):
        if _collapse(path, blank) != labels:
            continue
        pr = mpmath.fprod(probs[t][k] for t, k in enumerate(path))
        total += pr
        for t, k in enumerate(path):
            gamma[t][k] += pr
    return total, gamma


def _ctc_dynamic(probs: list, labels: tuple, blank: int) -> tuple:
    """(p, gamma [T][C]) by the forward and backward sums over the extended target, in probabilities."""
    ext = [blank]
    for k in labels:
        ext += [k, blank]
    t_len, c, n = len(probs), len(probs[0]), len(ext)

    def preds(s):
        return [r for r in (s, s - 1, s - 2) if r >= 0 and (r != s - 2 or (ext[s] != blank and ext[s] != ext[s - 2]))]

    alpha = [[mpf(0)] * n for _ in range(t_len)]
    beta = [[mpf(0)] * n for _ in range(t_len)]
    for s in range(min(2, n)):
        alpha[0][s] = probs[0][ext[s]]
    for t in range(1, t_len):
        for s in range(n):
            alpha[t][s] = mpmath.fsum(alpha[t - 1][r] for r in preds(s)) * probs[t][ext[s]]
    for s in range(max(0, n - 2), n):
        beta[-1][s] = probs[-1][ext[s]]
    for t in range(t_len - 2, -1, -1):
        for s in range(n):
            beta[t][s] = mpmath.fsum(beta[t + 1][r] for r in range(s, min(n, s + 3)) if s in preds(r)) * \
                probs[t][ext[s]]
    total = mpmath.fsum(alpha[-1][s] for s in range(max(0, n - 2), n))
    gamma = [[mpf(0)] * c for _ in range(t_len)]
    for t in range(t_len):
        for s in range(n):
            gamma[t][ext[s]] += alpha[t][s] * beta[t][s] / probs[t][ext[s]] if probs[t][ext[s]] else 0
    return total, gamma


def ctc_paths(probs: list, labels: tuple, blank: int) -> tuple:
    """(p, gamma): the probability of ``labels`` under per-frame class probabilities and the unnormalised
    posteriors; by enumeration when C^T <= MAX_ENUMERATED_PATHS."""
    if len(probs[0]) ** len(probs) <= MAX_ENUMERATED_PATHS:
        return _ctc_enumerated(probs, labels, blank)
    return _ctc_dynamic(probs, labels, blank)


def _ctc(call: Call):
    from lossconf.reference.sequence import lengths

    x = to_mpf(call.first)
    n, t_max, c = call.first.shape
    p = call.params
    t_len, l_len = lengths(call)
    values, grads = [], np.empty(x.shape, dtype=object)
    grads[...] = mpf(0)
    for i in range(n):
        ti, labels = int(t_len[i]), tuple(int(k) for k in call.second[i, : int(l_len[i])])
        rows = [list(x[i, t]) for t in range(ti)]
        if any(_isnan(v) for row in rows for v in row):
            values.append(NAN)
            grads[i, :ti] = NAN
            continue
        probs = []
        for row in rows:
            m = max(row)
            e = [mpmath.exp(v - m) for v in row]
            z = mpmath.fsum(e)
            probs.append([v / z for v in e])
        total, gamma = ctc_paths(probs, labels, p["blank"]) if ti else (mpf(0 if labels else 1), [])
        if total == 0:
            values.append(mpf(0) if p["zero_infinity"] else INF)
            continue
        values.append(-mpmath.log(total))
        for t in range(ti):
            for k in range(c):
                grads[i, t, k] = probs[t][k] - gamma[t][k] / total
    value = np.empty(n, dtype=object)
    value[:] = values
    if call.reduction == "mean" and p["mean_per_target_length"]:
        per = [mpf(max(int(v), 1)) for v in l_len]
        value[:] = [v / d for v, d in zip(values, per, strict=True)]
        for i in range(n):
            grads[i] = np.vectorize(lambda g, d=per[i]: g / d, otypes=[object])(grads[i]) if grads[i].size else grads[i]
    return _reduce(call, value, grads)


_ORACLES = {
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
    "linear_cross_entropy": lambda call: _linear_cross_entropy(call)[:2],
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


def error_ulps(approx, exact) -> np.ndarray:
    """|approx - exact| in ulps of float64 at ``exact`` (0 when both are the same non-finite, inf on a
    non-finite mismatch); ``approx`` may be any float array incl. longdouble."""
    with mp.workdps(DIGITS):
        return _error_ulps(approx, exact)


def _error_ulps(approx, exact) -> np.ndarray:
    approx_mp = to_mpf(np.asarray(approx)).reshape(-1)
    exact = np.asarray(exact, dtype=object).reshape(-1)
    out = np.empty(exact.size)
    for i, (a, e) in enumerate(zip(approx_mp, exact, strict=True)):
        if not mpmath.isfinite(e) or not mpmath.isfinite(a):
            out[i] = 0.0 if (_isnan(a) and _isnan(e)) or a == e else np.inf
            continue
        ulp = np.spacing(max(abs(float(e)), np.finfo(np.float64).tiny))
        out[i] = float(abs(a - e)) / ulp
    return out.reshape(np.shape(np.asarray(approx)))


def error_scaled(approx, exact, scale) -> np.ndarray:
    """|approx - exact| / scale elementwise (0 where both agree exactly; inf on a non-finite mismatch)."""
    with mp.workdps(DIGITS):
        return _error_scaled(approx, exact, scale)


def _error_scaled(approx, exact, scale) -> np.ndarray:
    approx_mp = to_mpf(np.asarray(approx)).reshape(-1)
    exact = np.asarray(exact, dtype=object).reshape(-1)
    scale = np.broadcast_to(np.asarray(scale, np.float64), np.shape(np.asarray(approx))).reshape(-1)
    out = np.empty(exact.size)
    for i, (a, e, s) in enumerate(zip(approx_mp, exact, scale, strict=True)):
        if not mpmath.isfinite(e) or not mpmath.isfinite(a):
            out[i] = 0.0 if (_isnan(a) and _isnan(e)) or a == e else np.inf
            continue
        err = abs(a - e)
        out[i] = 0.0 if err == 0 else (float(err / mpf(float(s))) if s > 0 else np.inf)
    return out.reshape(np.shape(np.asarray(approx)))
