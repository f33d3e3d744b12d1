"""Models of clips and floors: logits clipped at max - 64 (Paddle), probabilities floored at the smallest
normal number (warpctc), log(0) stood in for by log(1e-307) (TensorFlow's CTC), the 1e-12 floor of
binary cross-entropy's backward (torch, Paddle)."""

from __future__ import annotations

import numpy as np

from lossconf.errormodel import finfo
from lossconf.known_models.base import BCE_EPS, CLIP, Inputs, _class_axis, _f64, _log_softmax, _reference, _sum_in_order
from lossconf.known_models.conventions import _mean_over_all_samples
from lossconf.reference import numpy_dtype


def _clipped_64(first: np.ndarray, params: dict) -> np.ndarray:
    """Logits clipped to max(x) - 64 along the class axis (-inf becomes max - 64), in float64."""
    x = _f64(first)
    if x.size:
        with np.errstate(invalid="ignore"):
            x = np.maximum(x, np.max(x, axis=_class_axis(params), keepdims=True) - CLIP)
    return x


def _clip_64(loss, inputs: Inputs, dtype, variant) -> tuple:
    """The reference on logits clipped to max(x) - 64 along the class axis (-inf becomes max - 64)."""
    first, second, params = inputs
    return _reference(loss, _clipped_64(first, params), second, params, variant)


def _clip_64_mean_over_all_samples(loss, inputs: Inputs, dtype, variant) -> tuple:
    """Both Paddle mechanisms at once: logits clipped at max(x) - 64, and 'mean' dividing by every sample."""
    first, second, params = inputs
    return _mean_over_all_samples(loss, (_clipped_64(first, params), second, params), dtype, variant)


def _warpctc_probability_floor(loss, inputs: Inputs, dtype, variant) -> tuple:
    """CTC with every class probability floored at the smallest normal number of the dtype (Paddle's warpctc):
    the reference on log-probabilities max(log_softmax(x), log(tiny)) taken as logits (they renormalise to
    within tiny)."""
    first, second, params = inputs
    x = _f64(first)
    if x.size:
        with np.errstate(invalid="ignore"):
            x = np.maximum(_log_softmax(x, -1), np.log(float(finfo(dtype).smallest_normal)))
    return _reference(loss, x, second, params, variant)


TF_LOG_ZERO = float(np.float32(np.log(1e-307)))  # tf ctc_state_log_probs: log(0) stood in for, -706.9


def _tf_ctc_states(labels: np.ndarray, blank: int, c: int) -> tuple:
    """TensorFlow's dense CTC state machine for one padded label row of width S (ctc_ops._ctc_state_trans):
    label states 0..S (0: nothing emitted yet), blank states S+1..2S+1; returns the log transition counts
    [to, from] and per state the class it emits (-1: none) and the class its posterior goes to (-1: none)."""
    s = len(labels)
    new = np.where(labels < blank, labels + 1, labels)  # TF moves the blank to class 0
    old = np.where(new == 0, blank, np.where(new <= blank, new - 1, new))  # and back to the caller's classes
    emits = np.concatenate([[-1], old, np.full(s + 1, blank)])
    posterior = np.concatenate([[-1], np.where(new == 0, -1, old), np.full(s + 1, blank)])
    trans = np.eye(2 * (s + 1))  # path counts, added like TF's scatter_nd adds duplicate indices
    trans[1, 0] += 1  # start -> label 1; with S = 0 state 1 is blank 0, so that transition counts twice
    for j in range(s + 1):
        trans[s + 1 + j, j] += 1  # label j -> blank j
        if j < s:
            trans[j + 1, s + 1 + j] += 1  # blank j -> label j + 1
        if 2 <= j <= s and labels[j - 2] != labels[j - 1]:
            trans[j, j - 1] += 1  # label j - 1 -> label j unless repeated
    with np.errstate(divide="ignore"):
        return np.log(trans), emits, posterior


def _ctc_log_zero_floor(loss, inputs: Inputs, dtype, variant) -> tuple:
    """TensorFlow's dense CTC (ctc_ops.ctc_loss_and_grad): the states other than the start and the true final
    ones begin and end at log(1e-307) = -706.9 instead of -inf. The loss is -log of the paths from the start
    with end weights 1 (true final states) or 1e-307 (any other); the gradient is softmax minus the per-frame
    normalised posterior of a forward pass also started at 1e-307 in every state. tf.nn.ctc_loss returns
    one loss per sequence; "mean" and "sum" (keras.losses.CTC's reductions) reduce those over the batch
    (the catalog's plain mean). Scales: the reference's, the gradient's plus what the floor moved."""
    first, second, params = inputs
    reduction = params.get("reduction", "none")
    per_length = reduction == "mean" and params.get("mean_per_target_length")  # not how TF reduces
    if reduction not in ("none", "mean", "sum") or per_length or not np.size(first):
        return _reference(loss, first, second, params, variant)
    per_sequence = {**params, "reduction": "none"}
    ref_value, ref_grad, s_value, s_grad = _reference(loss, first, second, per_sequence, variant)
    x, labels = _f64(first), np.asarray(second)
    n, t_max, c = x.shape
    blank = int(params.get("blank", 0)) % c
    t_len = np.full(n, t_max) if params.get("input_lengths") is None else np.asarray(params["input_lengths"])
    l_len = np.full(n, labels.shape[1]) if params.get("target_lengths") is None else \
        np.asarray(params["target_lengths"])
    value, grad = np.zeros(n), np.zeros_like(x)
    for i in range(n):
        ti, li = int(t_len[i]), int(l_len[i])
        trans, emits, posterior = _tf_ctc_states(labels[i], blank, c)
        states = len(emits)
        lp = _log_softmax(x[i, :ti], -1)
        obs = np.where(emits >= 0, lp[:, np.maximum(emits, 0)], -np.inf)  # [T_i, states]
        start, final = np.full(states, TF_LOG_ZERO), np.full(states, TF_LOG_ZERO)
        start[0] = final[li] = final[labels.shape[1] + 1 + li] = 0.0
        alphas, a = [], start
        with np.errstate(invalid="ignore", divide="ignore"):
            for t in range(ti):
                a = _lse_rows(a[None, :] + trans) + obs[t]
                alphas.append(a)
            betas, b = [final], final
            for t in range(ti - 1, -1, -1):
                b = _lse_rows(trans.T + (obs[t] + b)[None, :])
                betas.append(b)
            betas = betas[::-1]  # betas[t]: frames t.. from each state before frame t
            value[i] = -betas[0][0]
            for t in range(ti):
                fb = alphas[t] + betas[t + 1]
                post = np.exp(fb - _lse_rows(fb[None, :])[0])
                gamma = np.zeros(c)
                np.add.at(gamma, posterior[posterior >= 0], post[posterior >= 0])
                grad[i, t] = np.exp(lp[t]) - gamma
    # the posterior mass the floor adds went through exponents up to |log 1e-307| + the loss: u times that
    moved = np.abs(np.where(np.isfinite(ref_grad), grad - ref_grad, grad))
    run = np.asarray(s_value, dtype=np.float64).reshape(n, 1, 1) + abs(TF_LOG_ZERO)
    extra = moved * (1 + 2 * np.where(np.isfinite(run), run, 0.0))
    if reduction != "none":  # the reduced reference's scales, plus the floor's share of each gradient
        _, _, s_value, s_grad = _reference(loss, first, second, params, variant)
        d = n if reduction == "mean" else 1
        value, grad, extra = np.sum(value) / d, grad / d, extra / d
    return value, grad, s_value, np.asarray(s_grad, dtype=np.float64) + extra


def _lse_rows(a: np.ndarray) -> np.ndarray:
    """log(sum(exp)) along the last axis; a row of -inf gives -inf."""
    m = np.max(a, axis=-1)
    safe = np.where(np.isfinite(m), m, 0.0)
    return safe + np.log(np.sum(np.exp(a - safe[..., None]), axis=-1))


def _bce_backward_eps(loss, inputs: Inputs, dtype, variant, eps: float = BCE_EPS) -> tuple:
    """Gradient (p - z) / max(p (1 - p), eps), eps = 1e-12 in the dtype (0 in float16); value as declared."""
    first, second, params = inputs
    value, grad, s_value, s_grad = _reference(loss, first, second, params, variant)
    p, z = _f64(first), _f64(second)
    eps = float(np.asarray(eps).astype(numpy_dtype(dtype)))
    with np.errstate(all="ignore"):
        g = (p - z) / np.maximum(p * (1 - p), eps)
        if isinstance(params.get("weight"), np.ndarray):
            g = g * _f64(params["weight"])
        if params.get("reduction") == "mean":
            g = g / max(p.size, 1)
    return value, g.astype(grad.dtype), s_value, np.where(np.isfinite(g), np.abs(g), s_grad)


def _bce_backward_eps_float32(loss, inputs: Inputs, dtype, variant) -> tuple:
    """As ``_bce_backward_eps`` with the 1e-12 a float32 constant first (torch's C++ kernel)."""
    return _bce_backward_eps(loss, inputs, dtype, variant, eps=float(np.float32(BCE_EPS)))


def _log_plus(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """warp-ctc's ctc_helper::log_plus in the arrays' dtype: log1p(exp(-|a - b|)) + max(a, b), -inf the identity."""
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.log1p(np.exp(-np.abs(a - b))) + np.maximum(a, b)
    return np.where(np.isneginf(a), b, np.where(np.isneginf(b), a, out))


def _shifted(a: np.ndarray, k: int) -> np.ndarray:
    """``a`` moved k places along its axis (back for k < 0), filled with -inf (False for a mask)."""
    fill = np.full(abs(k), False if a.dtype == bool else -np.inf, dtype=a.dtype)
    return np.concatenate([fill, a])[: len(a)] if k > 0 else np.concatenate([a, fill])[-k:]


def _ctc_zero_log_posterior(logp: np.ndarray, states: np.ndarray, classes: int) -> np.ndarray:
    """[T, C] mask of the frames and classes whose log posterior sum o = log sum_s alpha_s beta_s (each beta
    including its own frame's log p, as in warp-ctc) is exactly 0.0, alphas, betas and o formed in logp's dtype."""
    t_len, s_len = logp.shape
    neg = np.asarray(-np.inf, dtype=logp.dtype)
    skip = np.zeros(s_len, bool)  # s - 2 -> s: a label that is not a repeat of the one before
    skip[3::2] = states[3::2] != states[1:-2:2]
    alpha, beta = np.full(logp.shape, neg), np.full(logp.shape, neg)
    alpha[0, :2] = logp[0, :2]
    beta[-1, -2:] = logp[-1, -2:]
    for t in range(1, t_len):
        prev = alpha[t - 1]
        total = _log_plus(prev, _shifted(prev, 1))
        total = np.where(skip, _log_plus(total, _shifted(prev, 2)), total)
        alpha[t] = total + logp[t]
    for t in range(t_len - 2, -1, -1):
        nxt = beta[t + 1]
        total = _log_plus(nxt, _shifted(nxt, -1))
        total = np.where(_shifted(skip, -2), _log_plus(total, _shifted(nxt, -2)), total)
        beta[t] = total + logp[t]
    both = alpha + beta
    out = np.full((t_len, classes), neg)
    for s in range(s_len):  # warp-ctc's reduce-by-key, in state order
        out[:, states[s]] = _log_plus(out[:, states[s]], both[:, s])
    return out == 0


def _warpctc_zero_log_sentinel(loss, inputs: Inputs, dtype, variant) -> tuple:
    """Paddle's warpctc gradient (CpuCTC::compute_betas_and_grad): p - posterior as warpctc_probability_floor, but p
    itself at every frame and class whose log posterior sum o = log sum_s alpha_s beta_s, formed in the dtype, is
    exactly 0.0 (log 1: all the mass on one certain path), which warpctc takes for 'no path' like -inf."""
    from lossconf.reference.sequence import needed_frames

    first, second, params = inputs
    value, grad, s_value, s_grad = _warpctc_probability_floor(loss, inputs, dtype, variant)
    if not np.size(first):
        return value, grad, s_value, s_grad
    dt = numpy_dtype(dtype)
    x, labels = np.asarray(first).astype(dt), np.asarray(second)
    n, t_max, c = x.shape
    blank = int(params.get("blank", 0)) % c
    t_len = np.full(n, t_max) if params.get("input_lengths") is None else np.asarray(params["input_lengths"])
    l_len = np.full(n, labels.shape[1]) if params.get("target_lengths") is None else \
        np.asarray(params["target_lengths"])
    grad = np.array(grad, dtype=np.float64)
    with np.errstate(all="ignore"):
        e = np.exp(x - x.max(axis=-1, keepdims=True))  # warp-ctc's softmax: the sum in class order, floored
        probs = np.maximum(e / _sum_in_order(e, -1, dt), finfo(dtype).smallest_normal).astype(dt)
    for i in range(n):
        ti, target = int(t_len[i]), labels[i, : int(l_len[i])]
        if ti == 0 or needed_frames(target) > ti:  # warp-ctc returns 0 and leaves the gradient 0
            continue
        states = np.full(2 * len(target) + 1, blank)
        states[1::2] = target
        with np.errstate(all="ignore"):
            sentinel = _ctc_zero_log_posterior(np.log(probs[i, :ti][:, states]), states, c)
        factor = 1 / (n * max(len(target), 1)) if params.get("reduction") == "mean" else 1.0
        grad[i, :ti] = np.where(sentinel, probs[i, :ti].astype(np.float64) * factor, grad[i, :ti])
    return value, grad, s_value, s_grad
