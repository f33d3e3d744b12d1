"""Identities of the robust-regression, count and margin losses in the reference (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lossconf.reference import value_and_grad

SETTINGS = settings(max_examples=40, deadline=None)
REAL = st.floats(-1e3, 1e3, width=32)
SIGN = st.sampled_from([-1.0, 1.0])
POSITIVE = st.sampled_from([0.25, 0.5, 1.0, 3.0, 100.0])  # exact in float32


def f64(a) -> np.ndarray:
    return np.asarray(a, np.float64)


@SETTINGS
@given(arrays(np.float32, 8, elements=REAL), arrays(np.float32, 8, elements=REAL), POSITIVE)
def test_smooth_l1_is_huber_over_beta(x, y, beta):
    """smooth_l1(beta) = huber(delta = beta) / beta, value and gradient (torch's documented relation)."""
    vs, gs = value_and_grad("smooth_l1", x, y, beta=beta)
    vh, gh = value_and_grad("huber", x, y, delta=beta)
    np.testing.assert_allclose(f64(vs), f64(vh) / beta, rtol=1e-14, atol=0)
    np.testing.assert_allclose(f64(gs), f64(gh) / beta, rtol=1e-14, atol=0)


@SETTINGS
@given(arrays(np.float32, 8, elements=REAL), arrays(np.float32, 8, elements=REAL), POSITIVE)
def test_huber_is_half_square_inside_and_shifted_l1_outside(x, y, delta):
    """Huber = d^2 / 2 for |d| <= delta (the half-squared-error variant of MSE), delta (|d| - delta / 2) beyond."""
    value, grad = value_and_grad("huber", x, y, delta=delta)
    half_sq, half_sq_grad = value_and_grad("mean_squared_error", x, y, variant="half_squared_error")
    l1, l1_grad = value_and_grad("mean_absolute_error", x, y)
    inside = np.abs(f64(x) - f64(y)) <= delta
    np.testing.assert_allclose(f64(value)[inside], f64(half_sq)[inside], rtol=1e-15)
    np.testing.assert_allclose(f64(grad)[inside], f64(half_sq_grad)[inside], rtol=1e-15)
    np.testing.assert_allclose(f64(value)[~inside], delta * (f64(l1)[~inside] - delta / 2), rtol=1e-14)
    np.testing.assert_array_equal(f64(grad)[~inside], delta * f64(l1_grad)[~inside])


@SETTINGS
@given(arrays(np.float32, 8, elements=REAL), arrays(np.float32, 8, elements=REAL))
def test_log_cosh_lies_between_shifted_l1_and_half_square(x, y):
    """|d| - log 2 <= log cosh d <= d^2 / 2, and its gradient tanh d is in [-1, 1] with the sign of d."""
    value, grad = value_and_grad("log_cosh", x, y)
    d = f64(x) - f64(y)
    assert np.all(f64(value) >= np.abs(d) - np.log(2) - 1e-12 * np.abs(d))
    assert np.all(f64(value) <= d * d / 2 * (1 + 1e-14))
    assert np.all(np.abs(f64(grad)) <= 1) and np.all(np.sign(f64(grad)) == np.sign(d))


@SETTINGS
@given(arrays(np.float32, 8, elements=REAL), arrays(np.float64, 8, elements=SIGN))
def test_squared_hinge_is_hinge_squared(x, y):
    """squared_hinge = hinge^2; its gradient is 2 hinge times the hinge's gradient (0 at the margin)."""
    y = y.astype(np.float32)
    vs, gs = value_and_grad("squared_hinge", x, y)
    vh, gh = value_and_grad("hinge", x, y)
    np.testing.assert_allclose(f64(vs), f64(vh) ** 2, rtol=1e-15)
    np.testing.assert_allclose(f64(gs), 2 * f64(vh) * f64(gh), rtol=1e-15)


@SETTINGS
@given(arrays(np.float64, 8, elements=st.floats(-5, 5)),
       arrays(np.float64, 8, elements=st.integers(0, 30).map(float)), st.booleans())
def test_poisson_log_input_agrees_with_rates(log_rate, counts, full):
    """poisson_nll(log r, log_input=True) = poisson_nll(r, log_input=False); gradients differ by the chain
    rule d/d(log r) = r d/dr. Rates are exp(log r) rounded to float64, so the match is to ~1e-13."""
    rate = np.exp(log_rate)
    v_log, g_log = value_and_grad("poisson_nll", log_rate, counts, log_input=True, full=full)
    v_rate, g_rate = value_and_grad("poisson_nll", rate, counts, log_input=False, full=full)
    scale = rate + counts * (np.abs(log_rate) + 1)
    assert np.all(np.abs(f64(v_log) - f64(v_rate)) <= 1e-13 * scale)
    assert np.all(np.abs(f64(g_log) - rate * f64(g_rate)) <= 1e-13 * (rate + counts))


@SETTINGS
@given(arrays(np.float32, 8, elements=st.floats(-40, 40, width=32)), arrays(np.float64, 8, elements=st.floats(0, 1)),
       st.sampled_from([None, 0.25, 0.5, 0.9]))
def test_focal_with_gamma_0_is_alpha_weighted_sigmoid_ce(x, z, alpha):
    """sigmoid_focal_loss(gamma = 0) = a_t sigmoid_CE, a_t = alpha z + (1 - alpha)(1 - z) (1 without alpha)."""
    z = z.astype(np.float32)
    vf, gf = value_and_grad("sigmoid_focal_loss", x, z, gamma=0.0, alpha=alpha)
    vs, gs = value_and_grad("sigmoid_cross_entropy", x, z)
    a_t = 1.0 if alpha is None else alpha * f64(z) + (1 - alpha) * (1 - f64(z))
    np.testing.assert_allclose(f64(vf), a_t * f64(vs), rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(f64(gf), a_t * f64(gs), rtol=1e-13, atol=1e-300)


@SETTINGS
@given(arrays(np.float32, (3, 4), elements=st.floats(-1e3, 1e3, width=32).filter(lambda v: abs(v) > 1e-3)),
       arrays(np.float32, (3, 4), elements=st.floats(-1e3, 1e3, width=32).filter(lambda v: abs(v) > 1e-3)),
       st.sampled_from([0.5, 4.0, 1024.0]))
def test_cosine_is_scale_invariant_and_distance_is_one_minus(x, y, k):
    """cos(k x, y) = cos(x, y) for k > 0 (powers of two: exact scaling), the gradient scales by 1/k;
    the distance variant is 1 - cos with the opposite gradient."""
    v, g = value_and_grad("cosine_similarity", x, y)
    vk, gk = value_and_grad("cosine_similarity", (k * x).astype(np.float32), y)
    np.testing.assert_allclose(f64(vk), f64(v), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(k * f64(gk), f64(g), rtol=1e-10, atol=1e-12 * np.abs(f64(g)).max())
    vd, gd = value_and_grad("cosine_similarity", x, y, variant="cosine_distance")
    np.testing.assert_allclose(f64(vd), 1 - f64(v), rtol=1e-15, atol=1e-15)
    np.testing.assert_array_equal(f64(gd), -f64(g))
