"""The error model's bound is tight enough to catch real mistakes, and loose enough for correct results.

Each wrong computation below is a test fixture (never loss code used by the suite). It is compared
with the reference truth through ``lossconf.errormodel.compare`` with the calibrated kappa, and must
fail (ratio > 1) in every dtype; a correctly rounded truth must pass in every dtype.
"""

from __future__ import annotations

import numpy as np
import pytest

from lossconf.errormodel import bound, compare, ulp
from lossconf.reference import kappa, numpy_ref, oracle, straightforward
from lossconf.reference.catalog import CATALOG
from lossconf.reference.dtypes import DTYPES, numpy_dtype

LOGITS = [[2, 0.5, 6], [0.1, 0, 3]]  # document 001
ONEHOT = [[0, 0, 1], [0, 1, 0]]
SOFT = [[0.4, 0.1, 0.5], [0.3, 0.6, 0.1]]


def cast(a, dtype):
    return np.asarray(a, np.float64).astype(numpy_dtype(dtype))


def rounded(a, dtype):
    """A result as a framework returns it: rounded to the dtype."""
    return np.asarray(a, np.float64).astype(numpy_dtype(dtype))


def ratio(loss_id, quantity, wrong, dtype, first, second=None, **kw):
    ref = numpy_ref.evaluate(loss_id, first, second, **kw)
    truth, scale = (ref.value, ref.scale_value) if quantity == "value" else (ref.grad, ref.scale_grad)
    return compare(wrong, truth, scale, dtype, kappa(loss_id, quantity)).ratio


def softmax(x, dtype):
    return rounded(numpy_ref.value_and_grad("softmax", x)[0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("targets", [ONEHOT, SOFT])
def test_double_softmax_fails(dtype, targets):
    x, t = cast(LOGITS, dtype), cast(targets, dtype)
    wrong_v, wrong_g = numpy_ref.value_and_grad("softmax_cross_entropy", softmax(x, dtype), t)
    assert ratio("softmax_cross_entropy", "value", rounded(wrong_v, dtype), dtype, x, t) > 1
    assert ratio("softmax_cross_entropy", "grad", rounded(wrong_g, dtype), dtype, x, t) > 1


SMOOTHING_CASES = [
    # document logits, eps = 0.1: the two conventions differ by 0.017 in sample 0, below the bfloat16
    # spacing (1/32) of its logsumexp 6.02, which a correct lse-minus-logit implementation rounds; so
    # this case is only asserted where the difference exceeds rounding
    (LOGITS, ONEHOT, 0.1, ("float16", "float32", "float64")),
    ([[0.0, 3.0], [1.0, -2.0]], [[0, 1], [1, 0]], 0.3, DTYPES),  # C = 2: eps/2 versus eps
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean"])
@pytest.mark.parametrize("case", range(len(SMOOTHING_CASES)))
def test_smoothing_over_c_minus_1_fails_canonical(dtype, reduction, case):
    logits, labels, eps, dtypes = SMOOTHING_CASES[case]
    if dtype not in dtypes:
        pytest.skip("the conventions differ by less than rounding here (see SMOOTHING_CASES)")
    x, t = cast(logits, dtype), cast(labels, dtype)
    kw = {"reduction": reduction, "label_smoothing": eps}
    wrong_v, wrong_g = numpy_ref.value_and_grad("softmax_cross_entropy", x, t, variant="smoothing_over_c_minus_1",
                                                **kw)
    assert ratio("softmax_cross_entropy", "value", rounded(wrong_v, dtype), dtype, x, t, **kw) > 1
    assert ratio("softmax_cross_entropy", "grad", rounded(wrong_g, dtype), dtype, x, t, **kw) > 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss_id", ["softmax_cross_entropy", "mean_squared_error", "binary_cross_entropy"])
def test_sum_for_mean_and_gradient_without_one_over_n_fail(dtype, loss_id):
    x = cast(LOGITS, dtype) if loss_id != "binary_cross_entropy" else cast([[0.2, 0.5, 0.9], [0.6, 0.1, 0.3]],
                                                                              dtype)
    t = cast(SOFT, dtype)
    total, grad_of_sum = numpy_ref.value_and_grad(loss_id, x, t, reduction="sum")
    assert ratio(loss_id, "value", rounded(total, dtype), dtype, x, t, reduction="mean") > 1
    assert ratio(loss_id, "grad", rounded(grad_of_sum, dtype), dtype, x, t, reduction="mean") > 1


@pytest.mark.parametrize("dtype, gap", [("float16", 20.0), ("bfloat16", 100.0), ("float32", 200.0),
                                        ("float64", 1000.0)])
def test_naive_log_of_softmax_at_large_gaps_fails(dtype, gap):
    """log(softmax(x)) computed in the dtype underflows to log(0) = -inf for the far class."""
    x = cast([[0.0, gap, -gap], [1.0, 0.0, 2.0]], dtype)
    t = cast([[0, 0, 1], [0, 0, 1]], dtype)
    with np.errstate(divide="ignore", over="ignore"):
        xd = x.astype(np.float32 if dtype != "float64" else np.float64)
        e = np.exp(xd - xd.max(axis=1, keepdims=True))
        p = rounded(rounded(e, dtype) / rounded(e.sum(axis=1, keepdims=True), dtype), dtype)
        naive = rounded(-np.sum(t.astype(np.float64) * np.log(p.astype(np.float64)), axis=1), dtype)
    assert ratio("softmax_cross_entropy", "value", naive, dtype, x, t) > 1


def test_float32_arithmetic_on_float64_inputs_fails():
    rng = np.random.default_rng(5)
    x, t = rng.standard_normal((4, 10)), rng.dirichlet(np.ones(10), 4)
    for loss_id, second in (("softmax_cross_entropy", t), ("sigmoid_cross_entropy", rng.random((4, 10))),
                            ("mean_squared_error", t), ("log_softmax", None)):
        lowered = numpy_ref.evaluate(loss_id, x.astype(np.float32), None if second is None else
                                     second.astype(np.float32), scales=False)
        assert ratio(loss_id, "value", rounded(lowered.value, "float64"), "float64", x, second) > 1
        assert ratio(loss_id, "grad", rounded(lowered.grad, "float64"), "float64", x, second) > 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_over_the_wrong_axis_fails(dtype):
    x = cast(LOGITS, dtype)
    wrong = np.moveaxis(softmax(np.moveaxis(x, 0, -1), dtype), -1, 0)
    assert ratio("softmax", "value", wrong, dtype, x) > 1
    wrong_ce, _ = numpy_ref.value_and_grad("softmax_cross_entropy", x, cast(ONEHOT, dtype), axis=0)
    assert ratio("softmax_cross_entropy", "value", rounded(wrong_ce, dtype)[[0, 1]], dtype, x,
                 cast(ONEHOT, dtype)) > 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss_id", sorted(CATALOG))
def test_correctly_rounded_results_pass(loss_id, dtype):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from calibrate_kappa import random_inputs

    rng = np.random.default_rng([11, DTYPES.index(dtype)])
    for reduction in CATALOG[loss_id].reductions:
        for _ in range(4):
            first, second, params = random_inputs(loss_id, rng, dtype, max_classes=100)
            ref = numpy_ref.evaluate(loss_id, first, second, reduction=reduction, **params)
            for quantity, (truth, scale) in zip(CATALOG[loss_id].quantities, [
                    (ref.value, ref.scale_value), (ref.grad, ref.scale_grad), *ref.grads.values()], strict=True):
                with np.errstate(over="ignore"):
                    got = rounded(truth, dtype)
                result = compare(got, truth, scale, dtype, kappa(loss_id, quantity))
                assert result.ok, (loss_id, quantity, reduction, result)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_gradient_from_the_output_passes(dtype):
    """Frameworks differentiate sigmoid as y (1 - y) from the rounded output y: 1 - y cancels as y -> 1
    (measured before the s^2 term: error/bound 7.5 at x = 6 and 789 at x = 11 in float64)."""
    x = cast([-30, -11, -6, -1, 0, 1, 6, 11, 15, 20, 30, 60], dtype)
    _, got = straightforward.value_and_grad("sigmoid", x)
    _, exact_g = oracle.value_and_grad("sigmoid", x)
    ref = numpy_ref.evaluate("sigmoid", x)
    assert np.allclose(np.asarray(ref.grad, float), np.asarray(exact_g, float), rtol=1e-15, atol=0)
    result = compare(rounded(got, dtype), ref.grad, ref.scale_grad, dtype, kappa("sigmoid", "grad"))
    assert result.ok, result


def test_sigmoid_gradient_bound_still_bites():
    """The s^2 term does not hide a float32 evaluation of the float64 gradient near s = 1."""
    x = cast([6.0, 11.0, 3.0, -2.0], "float64")
    _, low = straightforward.value_and_grad("sigmoid", x.astype(np.float32))
    assert ratio("sigmoid", "grad", rounded(low, "float64"), "float64", x) > 1


def _keras_like_probabilities(dtype, c, alpha=0.5):
    """Seeded Dirichlet(alpha) probabilities and soft targets [3, C]."""
    rng = np.random.default_rng(23)
    return tuple(cast(rng.dirichlet(np.full(c, alpha), 3), dtype) for _ in range(2))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("loss_id", "kw"), [
    ("kl_divergence", {"variant": "clip_probabilities_1e-7", "log_input": False}),
    ("categorical_cross_entropy", {"variant": "normalize_then_clip_1e-7"})])
def test_autodiff_gradients_pass(dtype, loss_id, kw):
    """Keras differentiates its forward formula: KL through log(p / q) (five roundings of |p| / q), CE
    through p / sum(p) (a sum over C classes: the scale carries 1 + log2 C). With kappa 1, the KL case gave
    error/bound 2.1 (float32) and 2.2 (float64). C = 10 in float16/bfloat16, where probabilities of ~1/1000
    make -p / q / q overflow and p / sum(p) subnormal (outside any precision model)."""
    wide = dtype in ("float32", "float64")
    q, p = _keras_like_probabilities(dtype, 1000 if wide else 10, 0.5 if wide else 5.0)
    first, second = (q, p) if loss_id == "kl_divergence" else (p, q)
    _, got = straightforward.value_and_grad(loss_id, first, second, **kw)
    ref = numpy_ref.evaluate(loss_id, first, second, **kw)
    with np.errstate(over="ignore"):
        result = compare(rounded(got, dtype), ref.grad, ref.scale_grad, dtype, kappa(loss_id, "grad"))
    assert result.ok, result


@pytest.mark.parametrize("dtype", DTYPES)
def test_kl_value_through_log_of_ratio_passes(dtype):
    """log(p / q) rounds its argument (~u |p| absolute per term), which matters where p ~ q and the
    divergence is tiny; the value scale counts it (+|p| per term when log_input=False). Oracle truth; without
    the +|p|, error/bound was 1.2 (float16), 21 (float32) and 85 (float64) in the first row."""
    q = cast([[1 - 2**-9, 2**-9], [0.5, 0.5], [0.3, 0.7]], dtype)
    p = cast([[1.0, 0.0], [0.5 + 2**-8, 0.5 - 2**-8], [0.3, 0.7]], dtype)
    kw = {"variant": "clip_probabilities_1e-7", "log_input": False}
    got, _ = straightforward.value_and_grad("kl_divergence", q, p, **kw)
    exact, _ = oracle.value_and_grad("kl_divergence", q, p, **kw)
    scale, _ = numpy_ref.magnitudes("kl_divergence", q, p, **kw)
    truth = np.array([float(v) for v in exact])
    allowed = bound(truth, scale, dtype, kappa("kl_divergence", "value"))
    assert np.all(oracle.error_scaled(rounded(got, dtype), exact, allowed) <= 1)


def test_kl_gradient_bound_still_bites():
    """kappa 8 for the KL gradient does not hide float32 arithmetic on float64 probabilities."""
    q, p = _keras_like_probabilities("float64", 10)
    kw = {"variant": "clip_probabilities_1e-7", "log_input": False}
    _, low = straightforward.value_and_grad("kl_divergence", q.astype(np.float32), p.astype(np.float32), **kw)
    assert ratio("kl_divergence", "grad", rounded(low, "float64"), "float64", q, p, **kw) > 1


def test_a_large_result_judged_in_chunks_finds_the_same_worst_element_and_first_mismatch(monkeypatch):
    """Chunking (for memory) must not change a comparison: same worst element, ratio and message."""
    from lossconf import errormodel

    rng = np.random.default_rng(5)
    truth = rng.standard_normal((40, 7))
    got = (truth * (1 + rng.standard_normal(truth.shape) * 2**-24)).astype(np.float32)
    got[33, 2], got[21, 4] = np.nan, np.inf
    scale = np.abs(truth) + 1
    whole = errormodel.compare_rows(got, truth, scale, "float32", 2.0, [15, 25])
    monkeypatch.setattr(errormodel, "CHUNK_ELEMENTS", 20)  # 2 rows per chunk
    chunked = errormodel.compare_rows(got, truth, scale, "float32", 2.0, [15, 25])
    assert chunked == whole
    assert whole[1].nonfinite_mismatch.startswith("at (6, 4)") and whole[1].index == (6, 4)
    clean = errormodel.compare_rows(got[:15], truth[:15], scale[:15], "float32", 2.0, [15])
    monkeypatch.setattr(errormodel, "CHUNK_ELEMENTS", 1 << 21)
    assert clean == errormodel.compare_rows(got[:15], truth[:15], scale[:15], "float32", 2.0, [15])


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_ulp_is_the_dtype_spacing_also_just_below_a_power_of_two(dtype):
    """log2 rounds (1 - 2^-53) 2^k up to k in float64; the ulp must still be the spacing below 2^k."""
    npd = numpy_dtype(dtype)
    powers = (2.0 ** np.arange(-10, 11)).astype(npd)
    below = np.nextafter(powers, np.zeros(1, npd))
    values = np.concatenate([powers, below])
    assert np.array_equal(ulp(values.astype(np.float64), dtype), np.spacing(values).astype(np.float64))


@pytest.mark.parametrize("dtype", DTYPES)
def test_all_finite_shortcut_judges_like_the_general_path(dtype):
    """Where every result and truth is finite, the comparison's shortcut gives the general path's numbers."""
    from lossconf import errormodel

    rng = np.random.default_rng(3)
    truth = rng.standard_normal((40, 7)) * np.logspace(-30, 3, 7)
    got = rounded(truth * (1 + rng.standard_normal(truth.shape) * 1e-3), dtype)
    got[0, 0], truth[1, 1] = truth[0, 0], 0.0  # exact and zero
    scale = np.abs(truth).astype(np.float32) * 3
    fast = errormodel._elementwise(got, truth, scale, dtype, 2.0, False)
    assert fast.mismatch is None  # the shortcut found every result and truth finite
    slow_got = got.astype(np.float64)
    slow_got[5, 5] = np.nan  # one non-finite result sends the whole array down the general path
    slow = errormodel._elementwise(slow_got, truth, scale, dtype, 2.0, False)
    keep = np.ones(truth.shape, bool)
    keep[5, 5] = False
    for name in ("err", "bound", "ratio", "ulp"):
        np.testing.assert_array_equal(getattr(fast, name)[keep], getattr(slow, name)[keep], err_msg=name)
    assert slow.ratio[5, 5] == np.inf
