"""Mathematical identities the reference must satisfy (hypothesis, modest example counts)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lossconf.reference import value_and_grad
from lossconf.reference.catalog import CATALOG

SETTINGS = settings(max_examples=40, deadline=None)
LOGIT = st.floats(-30, 30, width=32)
UNIT = st.floats(0, 1)


def as_float(a) -> np.ndarray:
    return np.asarray(a, np.float64)


@SETTINGS
@given(arrays(np.float32, (4, 2), elements=LOGIT), arrays(np.float64, 4, elements=UNIT))
def test_two_class_softmax_is_sigmoid_of_the_difference(x, z):
    """CE([a, b], [1-z, z]) = sigmoid_CE(b - a, z); the gradients are (-g, g)."""
    x = x.astype(np.float64)
    t = np.stack([1 - z, z], axis=1)
    v2, g2 = value_and_grad("softmax_cross_entropy", x, t)
    v1, g1 = value_and_grad("sigmoid_cross_entropy", x[:, 1] - x[:, 0], z)  # difference exact in float64
    np.testing.assert_allclose(as_float(v2), as_float(v1), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(as_float(g2[:, 1]), as_float(g1), rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(as_float(g2[:, 0]), -as_float(g1), rtol=1e-12, atol=1e-16)


@SETTINGS
@given(arrays(np.float32, (5, 4), elements=LOGIT), arrays(np.int64, 5, elements=st.integers(-1, 3)),
       arrays(np.float32, 4, elements=st.floats(0, 5, width=32)), st.sampled_from([0.0, 0.1, 1.0]))
def test_sparse_equals_dense_on_one_hot(x, labels, w, eps):
    """Sparse CE equals dense CE on one-hot targets, with weights and an ignored label (-1 -> zero row)."""
    onehot = (labels[:, None] == np.arange(4)).astype(np.float32)
    for reduction in ("none", "sum"):
        vs, gs = value_and_grad("sparse_softmax_cross_entropy", x, labels, reduction=reduction, weight=w,
                                ignore_index=-1, label_smoothing=eps)
        keep = labels != -1
        vd, gd = value_and_grad("softmax_cross_entropy", x[keep], onehot[keep], reduction=reduction, weight=w,
                                label_smoothing=eps)
        np.testing.assert_allclose(vs if reduction == "sum" else vs[keep], vd, rtol=1e-14)
        np.testing.assert_allclose(gs[keep], gd, rtol=1e-14, atol=1e-300)
        assert not gs[~keep].any()


@SETTINGS
@given(arrays(np.float32, (3, 5), elements=LOGIT), st.integers(-100, 100),
       arrays(np.float64, (3, 5), elements=UNIT))
def test_invariant_to_a_constant_shift(x, c, t):
    x = np.round(x.astype(np.float64) * 1024) / 1024  # on a grid, so that x + c is exact
    v0, g0 = value_and_grad("softmax_cross_entropy", x, t)
    v1, g1 = value_and_grad("softmax_cross_entropy", x + c, t)  # exact: grid values + small integer
    np.testing.assert_allclose(as_float(v1), as_float(v0), rtol=1e-15)
    np.testing.assert_allclose(as_float(g1), as_float(g0), rtol=1e-15, atol=1e-300)


@SETTINGS
@given(arrays(np.float32, (3, 4), elements=LOGIT), arrays(np.float32, (3, 4), elements=UNIT))
def test_zero_smoothing_is_the_identity(x, t):
    assert np.array_equal(value_and_grad("smooth_labels", t, label_smoothing=0.0)[0], t)
    for variant in (None, "smoothing_over_c_minus_1"):
        with_eps = value_and_grad("softmax_cross_entropy", x, t, label_smoothing=0.0, variant=variant)
        plain = value_and_grad("softmax_cross_entropy", x, t)
        for a, b in zip(with_eps, plain, strict=True):
            np.testing.assert_array_equal(a, b)


@SETTINGS
@given(arrays(np.float32, (3, 4), elements=LOGIT), arrays(np.float64, (3, 4), elements=st.floats(1e-6, 1)))
def test_kl_is_cross_entropy_minus_entropy(x, p):
    x = x.astype(np.float64)
    log_q = as_float(value_and_grad("log_softmax", x)[0])
    kl, _ = value_and_grad("kl_divergence", log_q, p)
    ce, _ = value_and_grad("softmax_cross_entropy", x, p)
    entropy = -np.sum(p * np.log(p), axis=1)
    np.testing.assert_allclose(as_float(kl), as_float(ce) - entropy, rtol=1e-10, atol=1e-12)


def _inputs(loss_id: str, rng: np.random.Generator):
    """Inputs on a 2^-10 grid, away from kinks and domain edges, so that x +- 2^-20 is exact."""
    loss = CATALOG[loss_id]
    grid = lambda a: np.round(a * 1024) / 1024  # noqa: E731
    if loss.sequence:  # CTC: logits [2, 4, 3], labels with a repeat (needs a blank between)
        return grid(rng.uniform(-4, 4, (2, 4, 3))), np.array([[1, 2], [2, 2]])
    shape = (3, 4)
    role = loss.inputs[0].role
    if role == "probabilities" or loss_id == "smooth_labels":
        first = grid(rng.uniform(0.05, 0.95, shape))
    else:
        first = grid(rng.uniform(-4, 4, shape))
    second = None
    if loss.has_second:
        if loss.inputs[1].role == "labels":
            second = rng.integers(0, 4, 3)
        elif loss.inputs[1].domain == "values in [0, 1]" or loss.inputs[1].role == "targets":
            second = rng.uniform(0.05, 0.95, shape)
        if loss_id in ("mean_squared_error", "mean_absolute_error", "root_mean_squared_error"):
            second = first + grid(rng.uniform(0.1, 1, shape)) * rng.choice([-1, 1], shape)
    return first, second


@pytest.mark.parametrize("loss_id", sorted(k for k, loss in CATALOG.items() if not loss.grad_params))
@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_gradient_matches_central_difference(loss_id, seed):  # linear_cross_entropy: test_reference_linear
    """grad = d(sum value)/d(first) against a long-double central difference with h = 2^-20."""
    first, second = _inputs(loss_id, np.random.default_rng(seed))
    reduction = CATALOG[loss_id].reductions[-1]
    extra = {"label_smoothing": 0.1} if "label_smoothing" in CATALOG[loss_id].param_names else {}
    _, grad = value_and_grad(loss_id, first, second, reduction=reduction, **extra)
    h = 2.0**-20
    fd = np.empty(first.shape, np.longdouble)
    for i in np.ndindex(first.shape):
        up, down = first.copy(), first.copy()
        up[i] += h
        down[i] -= h
        f_up = np.sum(value_and_grad(loss_id, up, second, reduction=reduction, **extra)[0])
        f_down = np.sum(value_and_grad(loss_id, down, second, reduction=reduction, **extra)[0])
        fd[i] = (f_up - f_down) / (2 * np.longdouble(h))
    np.testing.assert_allclose(as_float(grad), as_float(fd), rtol=1e-8, atol=1e-9)
