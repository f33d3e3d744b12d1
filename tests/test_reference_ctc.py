"""CTC in the reference: against exhaustive alignment enumeration in mpmath, and its identities (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from mpmath import mp, mpf
from test_reference_oracle import cast, check

from lossconf.reference import numpy_ref, oracle, value_and_grad
from lossconf.reference.dtypes import DTYPES

SETTINGS = settings(max_examples=40, deadline=None)


def f64(a) -> np.ndarray:
    return np.asarray(a, np.float64)


def small_case(rng: np.random.Generator, t: int, c: int, blank: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Logits [3, T, C], labels [3, S] without the blank, per-sequence lengths that fit (2 L - 1 <= T_i)."""
    s = t // 2
    labels = rng.integers(0, c - 1, (3, s))
    labels = labels + (labels >= blank)
    params = {"blank": blank, "target_lengths": rng.integers(0, s + 1, 3),
              "input_lengths": rng.integers(max(2 * s - 1, 1), t + 1, 3)}
    return rng.standard_normal((3, t, c)) * 2, labels, params


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("t", "c"), [(1, 2), (3, 3), (4, 4), (6, 4), (5, 2)])
def test_reference_against_enumeration(dtype, t, c):
    """T <= 6, C <= 4: the oracle sums every one of the C^T alignments; blank at 0 and at C - 1, every reduction,
    the mean over target lengths, repeated labels where the draw gives them."""
    assert c**t <= oracle.MAX_ENUMERATED_PATHS
    rng = np.random.default_rng([t, c, DTYPES.index(dtype)])
    for blank in (0, c - 1):
        x, labels, params = small_case(rng, t, c, blank)
        for reduction in ("none", "mean", "sum"):
            check("ctc", cast(x, dtype), labels, reduction=reduction, **params)
        check("ctc", cast(x, dtype), labels, reduction="mean", variant="ctc_mean_over_target_lengths", **params)


def test_enumeration_and_dynamic_programming_agree():
    """The oracle's two ways of summing alignments give the same p and posteriors (60 digits)."""
    rng = np.random.default_rng(3)
    with mp.workdps(60):
        for labels in [(1, 2), (1, 1), (), (2,), (2, 2, 1)]:
            probs = [[mpf(float(v)) for v in rng.dirichlet([1.0] * 3)] for _ in range(6)]
            p1, g1 = oracle._ctc_enumerated(probs, labels, 0)
            p2, g2 = oracle._ctc_dynamic(probs, labels, 0)
            assert abs(p1 - p2) <= mpf(10) ** -55
            assert max(abs(a - b) for r1, r2 in zip(g1, g2, strict=True) for a, b in zip(r1, r2, strict=True)) \
                <= mpf(10) ** -55


def test_repeated_labels_need_a_blank_between():
    """(2, 2) fits in 3 frames (2, blank, 2) but not in 2: +inf, or 0 with gradient 0 under zero_infinity."""
    x = np.random.default_rng(0).standard_normal((1, 3, 4))
    value, _ = value_and_grad("ctc", x, np.array([[2, 2]]))
    lp = x - np.log(np.sum(np.exp(x), axis=-1, keepdims=True))
    np.testing.assert_allclose(f64(value), [-(lp[0, 0, 2] + lp[0, 1, 0] + lp[0, 2, 2])], rtol=1e-14)
    value, grad = value_and_grad("ctc", x[:, :2], np.array([[2, 2]]))
    assert np.isposinf(f64(value)).all() and not f64(grad).any()
    value, grad = value_and_grad("ctc", x[:, :2], np.array([[2, 2]]), zero_infinity=True)
    assert not f64(value).any() and not f64(grad).any()


def test_torch_mean_divides_by_target_lengths_clamped_at_one():
    """The variant: mean of l_i / max(L_i, 1); 'sum' and 'none' unaffected."""
    x = np.random.default_rng(1).standard_normal((3, 5, 4))
    labels, lengths = np.array([[1, 2], [3, 3], [1, 1]]), np.array([2, 0, 1])
    per, _ = value_and_grad("ctc", x, labels, target_lengths=lengths)
    mean, _ = value_and_grad("ctc", x, labels, reduction="mean", target_lengths=lengths,
                             variant="ctc_mean_over_target_lengths")
    np.testing.assert_allclose(f64(mean), np.mean(f64(per) / [2, 1, 1]), rtol=1e-15)


@SETTINGS
@given(st.integers(1, 4).flatmap(lambda t: st.tuples(
    arrays(np.float32, (2, t, 5), elements=st.floats(-30, 30, width=32)),
    st.lists(st.permutations([1, 2, 3, 4]).map(lambda p: list(p)), min_size=2, max_size=2))),
    st.sampled_from([0, 4]))
def test_one_frame_per_label_is_minus_the_path_log_probability(xs, blank):
    """T = L and no repeated labels: the only alignment is the target itself, so CTC = -sum_t log softmax(x_t)_{y_t}
    and its gradient softmax(x) - onehot(y)."""
    x, perms = xs
    t = x.shape[1]
    labels = np.array([[k - (blank == 4) for k in p[:t]] for p in perms])  # distinct classes, none the blank
    value, grad = value_and_grad("ctc", x, labels, blank=blank)
    x64 = f64(x)
    lp = x64 - np.log(np.sum(np.exp(x64 - x64.max(-1, keepdims=True)), axis=-1, keepdims=True)) - \
        x64.max(-1, keepdims=True)
    path = np.take_along_axis(lp, labels[:, :, None], axis=2)[..., 0]
    np.testing.assert_allclose(f64(value), -path.sum(axis=1), rtol=1e-12, atol=1e-12)
    onehot = np.eye(5)[labels]
    np.testing.assert_allclose(f64(grad), np.exp(lp) - onehot, rtol=1e-9, atol=1e-12)


def test_scale_is_finite_where_the_truth_is():
    x = cast(np.random.default_rng(2).standard_normal((2, 6, 3)) * 50, "float32")
    ref = numpy_ref.evaluate("ctc", x, np.array([[1, 2], [2, 2]]))
    assert np.isfinite(ref.scale_value).all() and np.isfinite(ref.scale_grad).all()
    assert (ref.scale_value >= np.abs(f64(ref.value))).all()
