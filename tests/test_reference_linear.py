"""linear_cross_entropy's streamed reference against the mpmath oracle (value, d/dh, d/dW), and its
input validation. Same acceptance as tests/test_reference_oracle.py: within ULPS float64 ulps of the
oracle, or within K_REF units of the working precision's roundoff times the error-model scale."""

from __future__ import annotations

import numpy as np
import pytest

from lossconf.reference import linear, numpy_ref, oracle
from lossconf.reference.dtypes import numpy_dtype

ULPS = {"float64": 1 / 64, "other": 1.0}
K_REF = 4.0
U_WORK = {np.dtype(np.float64): 2.0**-53, np.dtype(np.longdouble): float(np.finfo(np.longdouble).eps) / 2}


def _inputs(dtype, n=5, d=4, v=7, seed=0, offset=0.0, peak=0.0):
    rng = np.random.default_rng(seed)
    dt = numpy_dtype(dtype)
    h = rng.normal(size=(n, d))
    h[:, 0] = 1.0  # a constant feature: column 0 of W acts as a bias, so offset shifts every logit
    w = rng.normal(size=(v, d))
    w[:, 0] += offset
    labels = rng.integers(0, v, n)
    if peak:
        w[labels[0], 1:] = peak * np.sign(h[0, 1:]) / np.sum(np.abs(h[0, 1:]))
    return h.astype(dt), w.astype(dt), labels, rng.normal(size=v).astype(dt), rng.uniform(0.2, 2, v).astype(dt)


def check(h, labels, **kw):
    """Assert the reference within the bound for the three quantities; returns the worst float64 ulps."""
    ref = numpy_ref.evaluate("linear_cross_entropy", h, labels, **kw)
    exact = oracle.linear_cross_entropy(h, labels, **kw)
    u = U_WORK[ref.value.dtype]
    ulps = ULPS["float64" if h.dtype == np.float64 else "other"]
    dw, sdw = ref.grads["grad_linear_weight"]
    worst = 0.0
    for name, got, truth, scale in (("value", ref.value, exact[0], ref.scale_value),
                                    ("grad", ref.grad, exact[1], ref.scale_grad),
                                    ("grad_linear_weight", dw, exact[2], sdw)):
        assert got.shape == truth.shape, name
        in_ulps = oracle.error_ulps(got, truth)
        in_scale = oracle.error_scaled(got, truth, np.asarray(scale) * u)
        ok = (in_ulps <= ulps) | (in_scale <= K_REF)
        assert ok.all(), f"{name} {kw.keys()} ({h.dtype}): off by {in_ulps[~ok]} ulps, {in_scale[~ok]} u*S"
        worst = max(worst, float(np.max(in_ulps, initial=0)))
    return worst


@pytest.mark.parametrize("dtype", ["bfloat16", "float32", "float64"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_against_oracle(dtype, reduction):
    h, w, labels, b, cw = _inputs(dtype)
    for kw in ({}, {"linear_bias": b}, {"label_smoothing": 0.1}, {"weight": cw, "ignore_index": int(labels[1])},
               {"weight": cw, "label_smoothing": 0.3, "linear_bias": b}):
        check(h, labels, linear_weight=w, reduction=reduction, **kw)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_offset_and_peaked_rows(dtype):
    """A common logit offset of 1e4 (cancels in softmax) and a row peaked at logit ~60."""
    h, w, labels, _, _ = _inputs(dtype, offset=1e4)
    check(h, labels, linear_weight=w, reduction="mean")
    h, w, labels, _, _ = _inputs(dtype, peak=60.0, seed=3)
    check(h, labels, linear_weight=w, reduction="sum")


def test_variants_and_all_ignored():
    h, w, labels, _, cw = _inputs("float32")
    check(h, labels, linear_weight=w, weight=cw, reduction="mean", variant="mean_over_count")
    check(h, labels, linear_weight=w, label_smoothing=0.2, variant="smoothing_over_c_minus_1")
    ignored = np.full(len(labels), -100)
    for variant in (None, "all_ignored_zero"):
        check(h, ignored, linear_weight=w, ignore_index=-100, reduction="mean", variant=variant)


def test_streaming_is_chunk_independent(monkeypatch):
    """Many small vocabulary chunks (online log-sum-exp rescaling) agree with one chunk."""
    h, w, labels, b, cw = _inputs("float32", n=6, d=8, v=700)
    kw = dict(linear_weight=w, linear_bias=b, weight=cw, label_smoothing=0.1, reduction="mean")
    whole = numpy_ref.evaluate("linear_cross_entropy", h, labels, **kw)
    monkeypatch.setattr(linear, "CHUNK_ELEMENTS", 1)  # 64 classes per chunk: 11 chunks
    parts = numpy_ref.evaluate("linear_cross_entropy", h, labels, **kw)
    for a, b_ in ((whole.value, parts.value), (whole.grad, parts.grad),
                  (whole.grads["grad_linear_weight"][0], parts.grads["grad_linear_weight"][0])):
        np.testing.assert_allclose(np.asarray(a, float), np.asarray(b_, float), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(whole.scale_value, parts.scale_value, rtol=1e-12)


def test_logits_kept_from_pass_one_give_the_same_numbers_as_recomputed(monkeypatch):
    """Pass 1 keeps its first chunks' logits within LOGITS_CACHE_BYTES; pass 2 takes them back in order."""
    h, w, labels, b, cw = _inputs("float32", n=6, d=8, v=700)
    kw = dict(linear_weight=w, linear_bias=b, weight=cw, label_smoothing=0.1, reduction="mean")
    monkeypatch.setattr(linear, "CHUNK_ELEMENTS", 1)  # 64 classes per chunk: 11 chunks of 3 KiB
    results = []
    for kept in (0, 4 * 6 * 64 * 8, 1 << 20):  # none, the first 4 chunks, all
        monkeypatch.setattr(linear, "LOGITS_CACHE_BYTES", kept)
        ref = numpy_ref.evaluate("linear_cross_entropy", h, labels, **kw)
        results.append((ref.value, ref.grad, ref.scale_grad, *ref.grads["grad_linear_weight"]))
    for other in results[1:]:
        for a, b_ in zip(results[0], other, strict=True):
            assert np.array_equal(a, b_)


@pytest.mark.parametrize("kw, message", [
    ({}, "linear_weight: required"),
    ({"linear_weight": np.ones((3, 5), np.float32)}, "linear_weight: expected shape"),
    ({"linear_weight": np.ones((3, 4), np.float64)}, "linear_weight: expected the hidden states' dtype"),
    ({"linear_weight": np.full((3, 4), np.inf, np.float32)}, "linear_weight: expected finite"),
    ({"linear_weight": np.ones((3, 4), np.float32), "linear_bias": np.ones(4, np.float32)}, "linear_bias: expected"),
    ({"linear_weight": np.ones((3, 4), np.float32), "weight": -np.ones(3, np.float32)}, "weight: expected"),
])
def test_bad_input_names_the_argument(kw, message):
    with pytest.raises((ValueError, TypeError), match=message):
        numpy_ref.evaluate("linear_cross_entropy", np.ones((2, 4), np.float32), np.array([0, 1]), **kw)


def test_bad_labels_name_the_argument():
    w = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"second: labels must be in \[0, 3\)"):
        numpy_ref.evaluate("linear_cross_entropy", np.ones((2, 4), np.float32), np.array([0, 3]), linear_weight=w)
    with pytest.raises(ValueError, match="first: hidden states of shape"):
        numpy_ref.evaluate("linear_cross_entropy", np.ones(4, np.float32), np.array([0]), linear_weight=w)


@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_both_gradients_match_central_differences(reduction):
    """d/dh and d/dW against long-double central differences (h = 2^-20) of the summed value."""
    h, w, labels, b, cw = _inputs("float64", n=3, d=3, v=4, seed=5)
    kw = dict(reduction=reduction, linear_bias=b, weight=cw, label_smoothing=0.1)

    def total(h_, w_):
        return np.sum(numpy_ref.evaluate("linear_cross_entropy", h_, labels, linear_weight=w_, scales=False,
                                         **kw).value)

    ref = numpy_ref.evaluate("linear_cross_entropy", h, labels, linear_weight=w, **kw)
    step = 2.0**-20
    for got, x, which in ((ref.grad, h, 0), (ref.grads["grad_linear_weight"][0], w, 1)):
        fd = np.empty(x.shape, np.longdouble)
        for i in np.ndindex(x.shape):
            up, down = x.copy(), x.copy()
            up[i] += step
            down[i] -= step
            args_up, args_down = ((up, w), (down, w)) if which == 0 else ((h, up), (h, down))
            fd[i] = (total(*args_up) - total(*args_down)) / (2 * np.longdouble(step))
        np.testing.assert_allclose(np.asarray(got, float), np.asarray(fd, float), rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_scales_finite_non_negative_and_shaped(dtype):
    """Scales of the three quantities: the truths' shapes, finite and >= 0 (also at a 1e4 offset)."""
    for seed, offset in ((0, 0.0), (1, 1e4), (2, 50.0)):
        h, w, labels, b, cw = _inputs(dtype, n=4, d=5, v=9, seed=seed, offset=offset)
        for kw in ({"reduction": "none"}, {"reduction": "mean", "weight": cw, "linear_bias": b},
                   {"reduction": "sum", "label_smoothing": 1.0}):
            ref = numpy_ref.evaluate("linear_cross_entropy", h, labels, linear_weight=w, **kw)
            for truth, scale in ((ref.value, ref.scale_value), (ref.grad, ref.scale_grad),
                                 *ref.grads.values()):
                assert np.shape(scale) == np.shape(truth)
                assert np.all(np.isfinite(scale)) and np.all(scale >= 0)


def _straightforward_ok(h, labels, mutate=None, **kw) -> list[bool]:
    """Whether the straightforward implementation (optionally made wrong by ``mutate``) passes the error
    model for value, d/dh and d/dW."""
    from lossconf.errormodel import compare
    from lossconf.reference import kappa, straightforward
    from lossconf.reference.dtypes import dtype_name

    got = list(straightforward.linear_cross_entropy(h, labels, **kw))
    if mutate:
        got = mutate(got)
    ref = numpy_ref.evaluate("linear_cross_entropy", h, labels, **kw)
    truths = [(ref.value, ref.scale_value), (ref.grad, ref.scale_grad), ref.grads["grad_linear_weight"]]
    dtype = dtype_name(h.dtype)
    return [compare(np.asarray(g, np.float64).astype(h.dtype), t, s, dtype,
                    kappa("linear_cross_entropy", q)).ok
            for q, g, (t, s) in zip(("value", "grad", "grad_linear_weight"), got, truths, strict=True)]


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_error_model_passes_a_correct_implementation_and_bites_mistakes(dtype):
    h, w, labels, b, _ = _inputs(dtype, n=16, d=32, v=300, seed=8)
    kw = dict(linear_weight=w, linear_bias=b, reduction="mean")
    assert all(_straightforward_ok(h, labels, **kw))
    n = len(labels)
    # a weight gradient missing the mean's 1/N, and a bias dropped from the logits
    assert _straightforward_ok(h, labels, lambda g: [g[0], g[1], g[2] * n], **kw) == [True, True, False]
    if dtype == "float32":  # bfloat16's bound on a mean of 16 losses (u = 2^-8) is wider than the bias' effect
        assert not any(_straightforward_ok(h, labels, lambda g: list(straightforward_no_bias(h, labels, **kw)),
                                           **kw))


def straightforward_no_bias(h, labels, linear_bias, **kw):
    from lossconf.reference import straightforward

    return straightforward.linear_cross_entropy(h, labels, **kw)

