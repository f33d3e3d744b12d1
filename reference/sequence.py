"""Sequence losses: connectionist temporal classification (CTC), by the forward-backward recursion in log space.

Per sample i with logits x [T, C] (the first T_i frames count), target y of length L_i and the blank b:
the extended target l' = (b, y_1, b, y_2, ..., y_L, b) has 2 L + 1 states; alpha_t(s) is the log of the
probability of all alignment prefixes of frames 0..t that end in state s, beta_t(s) of all suffixes of frames
t..T_i-1 that start in s (both include frame t's emission). A transition stays, moves one state, or skips a
blank between two different labels. The loss is -log p, log p = lse(alpha_{T-1}(2L), alpha_{T-1}(2L-1)); the
posterior of class c at frame t is gamma_t(c) = sum_{s: l'_s = c} exp(alpha_t(s) + beta_t(s) - lp_t(c) - log p),
and the gradient with respect to the logits is softmax(x_t) - gamma_t (0 past T_i).

Every step is a log-sum-exp of a few terms plus a log-probability: no cancellation, so the working precision
(float64, long double for float64 inputs) carries the truth to a few of its ulps relative to the magnitudes
the error model's scale names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from lossconf.reference.drivers import Reference, _divide_grad, _reduce, finite_where

if TYPE_CHECKING:
    from lossconf.reference.numpy_ref import Call


def lengths(call: Call) -> tuple[np.ndarray, np.ndarray]:
    """(input lengths T_i, target lengths L_i) as int64 arrays [N]; None params mean the full T and S."""
    n, t = call.first.shape[:2]
    s = call.second.shape[1]
    p = call.params
    t_len = np.full(n, t, np.int64) if p["input_lengths"] is None else np.asarray(p["input_lengths"], np.int64)
    l_len = np.full(n, s, np.int64) if p["target_lengths"] is None else np.asarray(p["target_lengths"], np.int64)
    return t_len, l_len


def extended(labels: np.ndarray, blank: int) -> np.ndarray:
    """The blank-interleaved target (b, y_1, b, ..., y_L, b)."""
    ext = np.full(2 * len(labels) + 1, blank, np.int64)
    ext[1::2] = labels
    return ext


def skip_allowed(ext: np.ndarray) -> np.ndarray:
    """Per state s: may an alignment jump from s - 2 to s (a label differing from the label two states back)?"""
    ok = np.zeros(len(ext), bool)
    ok[2:] = (ext[2:] != ext[:-2]) & (np.arange(2, len(ext)) % 2 == 1)
    return ok


def needed_frames(labels: np.ndarray) -> int:
    """The fewest frames that can emit ``labels``: one per label plus one blank between each repeated pair."""
    return len(labels) + int(np.count_nonzero(labels[1:] == labels[:-1]))


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = np.max(x, axis=-1, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True))


def _lse(*terms: np.ndarray) -> np.ndarray:
    """log(sum exp) of a few same-shaped arrays; all -inf gives -inf."""
    stack = np.stack(terms)
    m = np.max(stack, axis=0)
    safe = np.where(np.isfinite(m), m, 0)
    return safe + np.log(np.sum(np.exp(stack - safe), axis=0))


def _shift(a: np.ndarray, k: int) -> np.ndarray:
    """a moved k states along (k > 0: out[s] = a[s - k]; k < 0: out[s] = a[s - k] from the right), -inf filled."""
    out = np.full_like(a, -np.inf)
    if k > 0:
        out[k:] = a[:-k] if k < len(a) else out[k:]
    else:
        out[:k] = a[-k:] if -k < len(a) else out[:k]
    return out


def _sample(lp: np.ndarray, ext: np.ndarray) -> tuple:
    """alpha, beta [T, S'] and log p of one sample's log-probabilities lp [T, C]."""
    t_len, n_states = lp.shape[0], len(ext)
    skip = skip_allowed(ext)
    ninf = lp.dtype.type(-np.inf)
    emit = lp[:, ext]  # [T, S']
    alpha = np.full((t_len, n_states), ninf, lp.dtype)
    beta = np.full((t_len, n_states), ninf, lp.dtype)
    alpha[0, :2] = emit[0, :2]
    for t in range(1, t_len):
        prev = alpha[t - 1]
        one, two = _shift(prev, 1), np.where(skip, _shift(prev, 2), ninf)
        alpha[t] = _lse(prev, one, two) + emit[t]
    beta[-1, -2:] = emit[-1, -2:]
    skip_next = _shift(skip.astype(lp.dtype), -2) == 1  # may s jump to s + 2
    for t in range(t_len - 2, -1, -1):
        nxt = beta[t + 1]
        one, two = _shift(nxt, -1), np.where(skip_next, _shift(nxt, -2), ninf)
        beta[t] = _lse(nxt, one, two) + emit[t]
    log_p = _lse(alpha[-1, -1], alpha[-1, -2]) if n_states > 1 else alpha[-1, -1]
    return alpha, beta, log_p


def ctc_rows(call: Call, scales: bool) -> tuple:
    """Per-sample values [N] and gradients [N, T, C] (unreduced) and, with ``scales``, their error-model scales."""
    x = call.first.astype(call.work)
    n, t_max, c = x.shape
    blank, zero_inf = int(call.params["blank"]) % max(c, 1), bool(call.params["zero_infinity"])
    t_len, l_len = lengths(call)
    value = np.zeros(n, call.work)
    grad = np.zeros(x.shape, call.work)
    sv = np.zeros(n) if scales else None
    sg = np.zeros(x.shape) if scales else None
    for i in range(n):
        ti, labels = int(t_len[i]), call.second[i, : int(l_len[i])]
        xi = x[i, :ti]
        if np.isnan(xi).any():
            value[i], grad[i, :ti] = np.nan, np.nan
            continue
        if needed_frames(labels) > ti:  # no alignment: p = 0
            value[i] = 0 if zero_inf else np.inf
            continue
        if ti == 0:  # no frames, empty target: the empty alignment, p = 1
            continue
        lp = _log_softmax(xi)
        ext = extended(labels, blank)
        alpha, beta, log_p = _sample(lp, ext)
        value[i] = -log_p
        post = np.exp(alpha + beta - lp[:, ext] - log_p)  # [T_i, S']
        gamma = np.zeros((ti, c), call.work)
        np.add.at(gamma.T, ext, post.T)
        soft = np.exp(lp)
        grad[i, :ti] = soft - gamma
        if scales:
            # per frame: log_softmax errs by ~u (1 + |x| + |lse|) (the shift, the log of the sum) and each
            # recursion step by ~u |alpha_t| (the rounding of the running log-probability)
            lse = (xi - lp)[:, 0].astype(np.float64)
            ax = np.where(np.isfinite(xi), np.abs(xi), 0).astype(np.float64)  # a -inf logit (masked class) counts 0
            frame = 1 + np.max(ax, axis=1) + np.where(np.isfinite(lse), np.abs(lse), 0)
            run = np.max(np.where(np.isfinite(alpha), np.abs(alpha), 0), axis=1).astype(np.float64)
            sv[i] = float(np.sum(frame + run)) + abs(float(value[i]))
            # gamma = exp(alpha + beta - lp + l): its exponent carries the value's errors twice (forward and
            # backward); an autodiff through log_softmax (torch's documented log_softmax -> ctc_loss) subtracts
            # softmax * sum_c(softmax - gamma), whose sum inherits gamma's error: softmax (1 + 2 S_v) too
            soft64, gamma64 = soft.astype(np.float64), gamma.astype(np.float64)
            sg[i, :ti] = soft64 * frame[:, None] + (gamma64 + soft64) * (1 + 2 * sv[i])
    if call.reduction == "mean" and call.params["mean_per_target_length"]:
        per = np.maximum(l_len, 1).astype(call.work)
        value = value / per
        grad /= per[:, None, None]
        if scales:
            sv, sg = sv / per.astype(np.float64), sg / per.astype(np.float64)[:, None, None]
    if scales:
        sv, sg = finite_where(sv, value), finite_where(sg, grad)
    return value, grad, sv, sg


def _ctc(call: Call, scales: bool) -> Reference:
    value, grad, sv, sg = ctc_rows(call, scales)
    d = call.work.type(value.size) if call.reduction == "mean" else call.work.type(1)
    _divide_grad(grad, sg, d)
    return _reduce(call, value, grad, sv, sg, d)


LOSSES: dict[str, Callable[[Call, bool], Reference]] = {
    "ctc": _ctc,
}
