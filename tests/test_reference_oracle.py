"""The NumPy reference against the mpmath oracle, in float64 ulps.

Asserted bound, per element:  |ref - oracle| <= ULPS * ulp64(oracle) + K_REF * u_work * S
where u_work is the unit roundoff of the reference's working precision (2^-53 for float64, 2^-64 for
the x86-64 long double used for float64 inputs) and S the error-model scale (``magnitudes``).

Why: the reference's formulas never cancel in the input domain (see numpy_ref's docstring), so where
the result is well-conditioned its error is a few roundings of the working precision relative to the
result: <= 1 ulp of float64 for float64 work, and far below (ULPS_LONGDOUBLE = 1/64 ulp) in long
double. Where the result itself is a cancellation (a gradient p - t at the optimum), the roundings
are relative to the size of the terms, which S measures; K_REF = 4 covers the handful of roundings
of each term. The error model allows frameworks kappa * u_dtype * S with u_dtype >= 2^-53, so the
reference is at least 2^11 (float64) or 2^29 (float32) times more accurate than what it judges.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from lossconf.errormodel import bound
from lossconf.reference import kappa, numpy_ref, oracle, probability
from lossconf.reference.catalog import CATALOG
from lossconf.reference.dtypes import DTYPES, numpy_dtype

ULPS = {"float64": 1 / 64, "other": 1.0}
K_REF = 4.0
U_WORK = {np.dtype(np.float64): 2.0**-53, np.dtype(np.longdouble): float(np.finfo(np.longdouble).eps) / 2}


def check(loss_id, first, second=None, **kw):
    """Assert the reference within the bound for value and gradient; returns the worst (ulps, ulps)."""
    ref = numpy_ref.evaluate(loss_id, first, second, **kw)
    exact_v, exact_g = oracle.value_and_grad(loss_id, first, second, **kw)
    u = U_WORK[ref.value.dtype]
    ulps = ULPS["float64" if first.dtype == np.float64 else "other"]
    worst = []
    for name, got, exact, scale in (("value", ref.value, exact_v, ref.scale_value),
                                    ("grad", ref.grad, exact_g, ref.scale_grad)):
        assert got.shape == exact.shape, name
        in_ulps = oracle.error_ulps(got, exact)
        in_scale = oracle.error_scaled(got, exact, np.asarray(scale) * u)
        ok = (in_ulps <= ulps) | (in_scale <= K_REF)
        assert ok.all(), (f"{loss_id} {kw} {name} ({first.dtype}): reference off by {in_ulps[~ok]} ulps, "
                          f"{in_scale[~ok]} u*S; ref {got[~ok]}, oracle {exact[~ok]}")
        worst.append(float(np.max(in_ulps, initial=0)))
    return worst


def cast(a, dtype):
    return np.asarray(a, np.float64).astype(numpy_dtype(dtype))


DOC_LOGITS = [[2, 0.5, 6], [0.1, 0, 3]]
DOC_ONEHOT = [[0, 0, 1], [0, 1, 0]]
DOC_SOFT = [[0.4, 0.1, 0.5], [0.3, 0.6, 0.1]]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_document_example(dtype, reduction):
    x = cast(DOC_LOGITS, dtype)
    for t in (DOC_ONEHOT, DOC_SOFT):
        check("softmax_cross_entropy", x, cast(t, dtype), reduction=reduction)
    check("sparse_softmax_cross_entropy", x, np.array([2, 1]), reduction=reduction)
    check("categorical_cross_entropy", cast(numpy_ref.value_and_grad("softmax", x)[0], dtype),
          cast(DOC_ONEHOT, dtype), reduction=reduction)


def test_document_printed_numbers():
    """rel1/rel4/loss of document 001 (TensorFlow float32, printed to 8 digits)."""
    x = cast(DOC_LOGITS, "float32")
    v, _ = numpy_ref.value_and_grad("softmax_cross_entropy", x, cast(DOC_SOFT, "float32"))
    np.testing.assert_allclose(np.asarray(v, float), [2.17215538, 2.76967359], rtol=1e-7)
    total, _ = numpy_ref.value_and_grad("sparse_softmax_cross_entropy", x, np.array([2, 1]), reduction="sum")
    np.testing.assert_allclose(float(total), 3.1218286, rtol=1e-7)


INF, NAN = np.inf, np.nan
CE_EDGE = [
    ([[1e4, 0, -1e4]] * 3, np.eye(3).tolist()),  # huge gaps, target on each class
    ([[INF, 0, 1], [INF, INF, 1], [-INF, 0, 1], [-INF, 0, 1]],
     [[1, 0, 0], [0.5, 0.5, 0], [0, 0.5, 0.5], [1, 0, 0]]),  # +-inf logits (the last: loss +inf)
    ([[NAN, 0, 1], [-INF, -INF, -INF]], [[0, 0, 1], [0, 0, 1]]),  # NaN row, all -inf row
    ([[0.5, 0.5, 0.5]], [[0.5, 0.9, 0.3]]),  # all-equal logits, labels not summing to 1
    ([[3.0], [-2.0]], [[1.0], [0.25]]),  # C = 1
    ([[11.0, -11.0, 0.0]], [[0.0, 1.0, 0.0]]),  # float16's gap
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("case", range(len(CE_EDGE)))
def test_softmax_cross_entropy_edges(dtype, eps, case):
    x, t = CE_EDGE[case]
    for reduction in ("none", "sum"):
        check("softmax_cross_entropy", cast(x, dtype), cast(t, dtype), reduction=reduction, label_smoothing=eps)
    check("softmax_cross_entropy", cast(x, dtype), cast(t, dtype), label_smoothing=eps,
          variant="smoothing_over_c_minus_1")


@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_edges(dtype):
    x = cast([[1e4, 0, -1e4], [INF, 0, 1], [0.1, 0, 3], [2, 0.5, 6]], dtype)
    labels = np.array([1, 0, 2, 1])
    w = cast([0.2, 1.0, 3.0], dtype)
    for kw in ({}, {"weight": w}, {"ignore_index": 2}, {"weight": w, "ignore_index": 1},
               {"label_smoothing": 0.1, "weight": w, "ignore_index": 0}):
        for reduction in ("none", "mean", "sum"):
            check("sparse_softmax_cross_entropy", x, labels, reduction=reduction, **kw)
        check("sparse_softmax_cross_entropy", x, labels, reduction="mean", variant="mean_over_count", **kw)
    for variant in (None, "all_ignored_zero"):
        check("sparse_softmax_cross_entropy", x, np.full(4, -100), reduction="mean", ignore_index=-100,
              variant=variant)


@pytest.mark.parametrize("dtype", DTYPES)
def test_probability_edges(dtype):
    p = cast([0.0, 1.0, 0.5, 1e-30, 1 - 2**-10, 0.0, 1.0, 0.3], dtype)
    z = cast([0.0, 1.0, 0.3, 1.0, 0.0, 0.7, 0.2, 0.3], dtype)
    for variant in (None, "clip_probabilities_1e-7", "clip_and_offset_1e-7", "log_clamp_-100"):
        check("binary_cross_entropy", p, z, variant=variant)
        check("binary_cross_entropy", p, z, reduction="mean", variant=variant)
    probs = cast([[0.0, 1.0, 0.0], [0.2, 0.3, 0.5], [1e-30, 0.5, 0.5]], dtype)
    targets = cast([[0.0, 1.0, 0.0], [0.5, 0.9, 0.3], [0.0, 0.5, 0.5]], dtype)
    for variant in (None, "clip_probabilities_1e-7", "normalize_then_clip_1e-7"):
        check("categorical_cross_entropy", probs, targets, reduction="sum", variant=variant)
    for variant, log_input in ((None, True), (None, False), ("clip_probabilities_1e-7", False)):
        q = probs if not log_input else cast(np.log(np.asarray(probs, float) + 1e-300), dtype)
        check("kl_divergence", q, targets, variant=variant, log_input=log_input)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_kl_zero_target_terms_vanish_whatever_q(dtype, reduction):
    """0 log(0 / q) = 0 also where q = 0 (log q = -inf): finite truth, finite gradient (was NaN)."""
    for q, p, log_input in (([[-INF, -0.5, -1.0]], [[0.0, 0.6, 0.4]], True),
                            ([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]], [[0.1, 0.6, 0.3], [1.0, 0.0, 0.0]], False)):
        q, p = cast(q, dtype), cast(p, dtype)
        exact_v, exact_g = oracle.value_and_grad("kl_divergence", q, p, reduction=reduction, log_input=log_input)
        assert all(mpmath.isfinite(v) for v in exact_v.reshape(-1))
        assert all(mpmath.isfinite(g) for g in exact_g.reshape(-1))
        check("kl_divergence", q, p, reduction=reduction, log_input=log_input)
        value, grad = numpy_ref.value_and_grad("kl_divergence", q, p, reduction=reduction, log_input=log_input)
        assert np.isfinite(value).all() and np.isfinite(grad).all()


# fl_d(1e-7) and fl_d(1 - fl_d(1e-7)): the clip bounds Keras holds in the input's dtype d
CLIP_LO = {"float16": 1.1920928955078125e-07, "bfloat16": 1.0011717677116394e-07,
           "float32": 1.0000000116860974e-07, "float64": 1e-07}
CLIP_HI = {"float16": 1.0, "bfloat16": 1.0, "float32": 0.9999998807907104, "float64": 0.9999999}


@pytest.mark.parametrize("dtype", DTYPES)
def test_keras2_clip_and_offset(dtype):
    """tf_keras binary_crossentropy: clip to [lo, hi], then log(p' + lo) and log(1 - p' + lo), all in the dtype."""
    p = cast([0.0, 1e-9, 1e-7, 2e-7, 0.3, 0.5, 0.75, 1 - 2**-10, 1 - 1e-7, 1.0], dtype)
    z = cast([1.0, 1.0, 0.0, 0.5, 0.3, 1.0, 0.2, 1.0, 0.0, 0.0], dtype)
    for reduction in ("none", "sum"):
        check("binary_cross_entropy", p, z, reduction=reduction, variant="clip_and_offset_1e-7")
    # p = 0 under z = 1 is clipped to lo: -log(lo + lo); p = 1 under z = 0 to hi: -log((1 - hi) + lo)
    lo, hi = CLIP_LO[dtype], CLIP_HI[dtype]
    value, grad = numpy_ref.value_and_grad("binary_cross_entropy", cast([0.0, 1.0], dtype), cast([1.0, 0.0], dtype),
                                           variant="clip_and_offset_1e-7")
    np.testing.assert_allclose(np.asarray(value, float), [-math.log(2 * lo), -math.log((1 - hi) + lo)], rtol=1e-15)
    # clipped sides have the clip's gradient 0; where hi rounds to 1, p = 1 is not clipped: 1 / (0 + lo)
    np.testing.assert_allclose(np.asarray(grad, float), [0.0, 0.0 if hi < 1 else 1 / lo], rtol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_offset_rounding_of_the_log_argument_is_allowed(dtype):
    """tf_keras's formula as written, every operation rounded to the dtype (clip, log(p' + lo), log(1 - p' + lo)),
    is within the error model against the oracle truth. p' + lo is rounded, which costs ~u |z| absolute, so the
    value scale counts +|z| for that log as it counts +|1 - z| for log(1 - p'): without it, p just below
    1 - lo under z = 1 (float64 truth -5.3e-17, got 0) was 1e16 bounds off."""
    d = numpy_dtype(dtype)

    def rd(a):
        return np.asarray(a, np.float64).astype(d).astype(np.float64)

    lo, hi = CLIP_LO[dtype], CLIP_HI[dtype]
    near_hi = [float(np.nextafter(d.type(hi), d.type(0)) if k else hi) for k in range(2)]
    p = rd([*near_hi, 0.9999999999999148, 1 - 3e-7, 1 - 2**-13, 0.5, 0.3, 2e-7, lo, 0.0, 1.0] * 3)
    z = rd(np.repeat([1.0, 0.0, 0.3], len(p) // 3))
    pc = np.clip(p, lo, hi)
    got = rd(-rd(rd(z * rd(np.log(rd(pc + lo)))) + rd(rd(1 - z) * rd(np.log(rd(rd(1 - pc) + lo))))))
    p, z = p.astype(d), z.astype(d)
    truth, _ = oracle.value_and_grad("binary_cross_entropy", p, z, variant="clip_and_offset_1e-7")
    scale, _ = numpy_ref.magnitudes("binary_cross_entropy", p, z, variant="clip_and_offset_1e-7")
    allowed = bound(np.array([float(t) for t in truth]), scale, dtype, kappa("binary_cross_entropy", "value"))
    ratio = oracle.error_scaled(got, truth, allowed)
    worst = int(np.argmax(ratio))
    assert np.all(ratio <= 1), f"error / bound {ratio[worst]:.3g} at p = {p[worst]}, z = {z[worst]}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_bounds_are_rounded_to_the_dtype(dtype):
    assert probability.clip_bounds(1e-7, numpy_dtype(dtype)) == (CLIP_LO[dtype], CLIP_HI[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_elementwise_edges(dtype):
    x = cast([1e4, -1e4, INF, -INF, 0.0, 20.0, -20.0, 0.5], dtype)
    z = cast([1.0, 0.0, 1.0, 0.0, 0.5, 1.0, 0.0, 0.3], dtype)
    for kw in ({}, {"label_smoothing": 0.1}, {"pos_weight": cast([3.0], dtype)}):
        check("sigmoid_cross_entropy", x, z, **kw)
    check("sigmoid", x)
    finite = cast([3.0, -2.5, 0.0, 1e3], dtype)
    y = cast([1.0, -2.5, 0.25, -1e3], dtype)
    for loss_id in ("mean_squared_error", "mean_absolute_error"):
        check(loss_id, finite, y, reduction="mean")
    check("mean_squared_error", finite, y, variant="half_squared_error")
    check("root_mean_squared_error", cast([[3.0, -1.0], [0.5, 2.0]], dtype), cast([1.0, 0.0], dtype),
          reduction="mean")


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_family_edges(dtype):
    x = cast([[1e4, 0, -1e4], [INF, 0, 1], [0.5, 0.5, 0.5], [-INF, 0, 1]], dtype)
    check("softmax", x)
    check("log_softmax", x)
    labels = cast([[0, 1, 0], [0.2, 0.3, 0.5], [1, 0, 0], [0, 0, 1]], dtype)
    for eps in (0.0, 0.1, 1.0):
        check("smooth_labels", labels, label_smoothing=eps)
        check("smooth_labels", labels, label_smoothing=eps, variant="smoothing_over_c_minus_1")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("loss_id", "second"), [
    ("softmax", None), ("log_softmax", None), ("softmax_cross_entropy", [[0, 1, 0], [0, 0, 1]]),
    ("softmax_cross_entropy", [[0, 0, 0], [0, 0, 1]]), ("sparse_softmax_cross_entropy", [1, 2])])
def test_all_logits_minus_inf_is_undefined(dtype, loss_id, second):
    """Every logit -inf: softmax is 0/0 and the function undefined, so that sample's value and gradient are
    NaN (the catalog's rule), in the reference and the oracle; the other sample stays finite."""
    x = cast([[-INF, -INF, -INF], [0.5, -INF, 2.0]], dtype)
    if second is not None:
        second = np.array(second) if loss_id.startswith("sparse") else cast(second, dtype)
    for impl in (numpy_ref.value_and_grad, oracle.value_and_grad):
        value, grad = impl(loss_id, x, second)
        value = np.array([float(v) for v in np.asarray(value).reshape(-1)]).reshape(np.shape(value))
        grad = np.array([[float(g) for g in row] for row in grad])
        assert np.isnan(value[0]).all() and np.isnan(grad[0]).all(), (impl.__module__, value, grad)
        assert np.isfinite(grad[1]).all(), (impl.__module__, grad)
    check(loss_id, x, second)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss_id", sorted(CATALOG))
def test_random(loss_id, dtype):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from calibrate_kappa import random_inputs

    rng = np.random.default_rng([7, sorted(CATALOG).index(loss_id), DTYPES.index(dtype)])
    for reduction in CATALOG[loss_id].reductions:
        for _ in range(3):
            first, second, params = random_inputs(loss_id, rng, dtype, max_classes=50)
            check(loss_id, first, second, reduction=reduction, **params)


def test_longdouble_is_far_below_one_float64_ulp():
    """Measured: float64 inputs (long double work) stay well below 1/64 ulp of float64 on the doc example."""
    worst = check("softmax_cross_entropy", cast(DOC_LOGITS, "float64"), cast(DOC_SOFT, "float64"))
    assert max(worst) < 1 / 64
