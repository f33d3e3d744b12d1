"""Validation, shapes and edge semantics of the NumPy reference (no oracle needed)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from lossconf.reference import drivers, kappa, magnitudes, numpy_ref, value_and_grad, working_dtype
from lossconf.reference.catalog import CATALOG

X = np.array([[2, 0.5, 6], [0.1, 0, 3]], np.float32)
T = np.array([[0, 0, 1], [0, 1, 0]], np.float32)


@pytest.mark.parametrize(
    "call, kind, match",
    [
        (lambda: value_and_grad("softmax_xent", X, T), ValueError, "loss_id"),
        (lambda: value_and_grad("softmax_cross_entropy", X, T, reduction="avg"), ValueError, "reduction"),
        (lambda: value_and_grad("root_mean_squared_error", X, X), ValueError, "reduction"),
        (lambda: value_and_grad("softmax_cross_entropy", X, T, variant="nope"), ValueError, "variant"),
        (lambda: value_and_grad("softmax_cross_entropy", X, T, variant="log_clamp_-100"), ValueError, "variant"),
        (lambda: value_and_grad("softmax_cross_entropy", X, T[:, :2]), ValueError, "second"),
        (lambda: value_and_grad("sparse_softmax_cross_entropy", X, np.array([0, 3])), ValueError, "second"),
        (lambda: value_and_grad("sparse_softmax_cross_entropy", X, np.array([0.0, 1.0])), TypeError, "second"),
        (lambda: value_and_grad("sparse_softmax_cross_entropy", X, np.array([0, 1, 2])), ValueError, "second"),
        (lambda: value_and_grad("binary_cross_entropy", X, T), ValueError, "first"),
        (lambda: value_and_grad("binary_cross_entropy", T, T + 2), ValueError, "second"),
        (lambda: value_and_grad("softmax_cross_entropy", X, T, label_smoothing=1.5), ValueError, "label_smoothing"),
        (lambda: value_and_grad("softmax_cross_entropy", X, T, label_smoothing=-0.1), ValueError,
         "label_smoothing"),
        (lambda: value_and_grad("softmax_cross_entropy", X, T, weight=np.ones(2)), ValueError, "weight"),
        (lambda: value_and_grad("softmax_cross_entropy", X, T, weight=-np.ones(3)), ValueError, "weight"),
        (lambda: value_and_grad("softmax_cross_entropy", np.zeros((2, 0)), np.zeros((2, 0))), ValueError,
         "first"),
        (lambda: value_and_grad("softmax_cross_entropy", X, T, ignore_index=0), ValueError, "ignore_index"),
        (lambda: value_and_grad("mean_squared_error", X, X, clip=1e-7), ValueError, "clip"),
        (lambda: value_and_grad("softmax_cross_entropy", X, T, axis=2), ValueError, "axis"),
        (lambda: value_and_grad("softmax_cross_entropy", X.astype(np.int32), T), TypeError, "first"),
        (lambda: value_and_grad("softmax_cross_entropy", X.astype(np.complex64), T), TypeError, "first"),
        (lambda: value_and_grad("sigmoid_cross_entropy", X, T, pos_weight=-np.ones(3)), ValueError, "pos_weight"),
        (lambda: value_and_grad("mean_squared_error", X, np.ones(4)), ValueError, "second"),
        (lambda: value_and_grad("softmax", X, X), ValueError, "second"),
        (lambda: value_and_grad("kl_divergence", T, T, variant="clip_probabilities_1e-7"), ValueError, "clip"),
        (lambda: value_and_grad("sparse_softmax_cross_entropy", X, np.array([0, 1]),
                                mean_denominator="half"), ValueError, "mean_denominator"),
        (lambda: value_and_grad("binary_cross_entropy", T, T, log_offset=0.7), ValueError, "log_offset"),
        (lambda: kappa("softmax_cross_entropy", "hessian"), ValueError, "quantity"),
    ],
)
def test_bad_input_is_named(call, kind, match):
    with pytest.raises(kind, match=match):
        call()


def test_working_dtype():
    assert working_dtype(np.float16) == np.float64
    assert working_dtype(ml_dtypes.bfloat16) == np.float64
    assert working_dtype(np.float32) == np.float64
    assert working_dtype(np.float64) == np.longdouble
    with pytest.raises(TypeError, match="dtype"):
        working_dtype(np.int64)


def test_float64_truths_need_a_wide_long_double():
    """README: x87 extended precision for float64 inputs. True here, or the reference refuses float64."""
    nmant = int(np.finfo(np.longdouble).nmant)
    if nmant >= 63:
        assert working_dtype(np.float64) == np.longdouble
        assert np.longdouble(1) + np.longdouble(2.0**-60) != 1  # really wider than float64
    else:
        with pytest.raises(TypeError, match="mantissa bits"):
            value_and_grad("softmax_cross_entropy", X.astype(np.float64), T.astype(np.float64))
    with pytest.raises(TypeError, match="52 mantissa bits"):  # what macOS arm64 / Windows would say
        working_dtype(np.float64, longdouble_nmant=52)
    assert working_dtype(np.float32, longdouble_nmant=52) == np.float64


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16, np.float32, np.float64])
def test_shapes_and_dtypes(dtype):
    x = X.astype(dtype)
    v, g = value_and_grad("softmax_cross_entropy", x, T.astype(dtype))
    assert v.shape == (2,) and g.shape == (2, 3) and v.dtype == working_dtype(dtype) == g.dtype
    v, g = value_and_grad("softmax_cross_entropy", x, T.astype(dtype), reduction="mean")
    assert v.shape == () and g.shape == (2, 3)
    sv, sg = magnitudes("softmax_cross_entropy", x, T.astype(dtype), reduction="mean")
    assert sv.shape == () and sg.shape == (2, 3) and sv.dtype == sg.dtype == np.float64


def test_empty_batch():
    x, t = np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)
    assert np.isnan(value_and_grad("softmax_cross_entropy", x, t, reduction="mean")[0])
    assert value_and_grad("softmax_cross_entropy", x, t, reduction="sum")[0] == 0
    assert value_and_grad("softmax_cross_entropy", x, t)[0].shape == (0,)


def test_all_ignored():
    labels = np.array([-1, -1])
    v, g = value_and_grad("sparse_softmax_cross_entropy", X, labels, reduction="mean", ignore_index=-1)
    assert np.isnan(v) and not g.any()
    v, _ = value_and_grad("sparse_softmax_cross_entropy", X, labels, reduction="mean", ignore_index=-1,
                          variant="all_ignored_zero")
    assert v == 0


def test_class_axis_one():
    """[N, C, d] with axis=1 equals the same data with classes last."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 3)).astype(np.float32)
    labels = rng.integers(0, 4, (2, 3))
    v1, g1 = value_and_grad("sparse_softmax_cross_entropy", x, labels, axis=1)
    v2, g2 = value_and_grad("sparse_softmax_cross_entropy", np.moveaxis(x, 1, -1), labels)
    np.testing.assert_array_equal(v1, v2)
    np.testing.assert_array_equal(g1, np.moveaxis(g2, -1, 1))


def test_chunking_does_not_change_results(monkeypatch):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((37, 11)) * 10).astype(np.float32)
    labels = rng.integers(0, 11, 37)
    whole = numpy_ref.evaluate("sparse_softmax_cross_entropy", x, labels, reduction="mean", label_smoothing=0.1)
    monkeypatch.setattr(drivers, "CHUNK_ELEMENTS", 25)  # 2 rows per chunk
    chunked = numpy_ref.evaluate("sparse_softmax_cross_entropy", x, labels, reduction="mean", label_smoothing=0.1)
    for a, b in zip(vars(whole).values(), vars(chunked).values(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_nan_stays_in_its_sample():
    x = X.copy()
    x[0, 1] = np.nan
    v, g = value_and_grad("softmax_cross_entropy", x, T)
    assert np.isnan(v[0]) and np.isnan(g[0]).all()
    assert np.isfinite(v[1]) and np.isfinite(g[1]).all()


@pytest.mark.parametrize("loss_id", sorted(CATALOG))
def test_scales_finite_where_truth_finite(loss_id):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from calibrate_kappa import random_inputs

    rng = np.random.default_rng(3)
    for dtype in ("float16", "float32", "float64"):
        for _ in range(5):
            first, second, params = random_inputs(loss_id, rng, dtype, max_classes=100)
            for reduction in CATALOG[loss_id].reductions:
                ref = numpy_ref.evaluate(loss_id, first, second, reduction=reduction, **params)
                for truth, s in ((ref.value, ref.scale_value), (ref.grad, ref.scale_grad), *ref.grads.values()):
                    finite = np.isfinite(np.asarray(truth, np.float64))
                    assert np.all(np.isfinite(s[finite]) & (s[finite] >= 0))


def test_kappa_table_covers_the_catalog():
    for loss_id in CATALOG:
        for quantity in CATALOG[loss_id].quantities:
            assert kappa(loss_id, quantity) >= 1


def test_reference_accuracy_json_covers_the_catalog():
    """lossconf/reference_accuracy.json (benchmarks/reference_accuracy.py) is published in the report."""
    import json
    from importlib import resources

    from lossconf.reference import oracle
    from lossconf.reference.dtypes import DTYPES

    data = json.loads(resources.files("lossconf").joinpath("reference_accuracy.json").read_text())
    assert set(data["losses"]) == set(CATALOG)
    assert data["oracle_digits"] == oracle.DIGITS and data["measured"] and data["method"]
    for loss_id, per_dtype in data["losses"].items():
        assert set(per_dtype) == set(DTYPES), loss_id
        assert per_dtype["float64"]["value"] < 1 / 64 and per_dtype["float64"]["grad"] < 1 / 64, loss_id
