"""The error-model scales S (``magnitudes``): finite and >= 0 wherever the truth is finite, for every loss,
reduction, parameter and variant (hypothesis, with NaN/inf/0/1/huge/tiny inputs); and the cross-entropy
scales follow the catalog's formula, evaluated here from oracle softmax / log-softmax values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossconf.reference import evaluate, oracle
from lossconf.reference.catalog import CATALOG, get_variant
from lossconf.reference.dtypes import DTYPES, numpy_dtype

SPECIAL = [0.0, 1.0, -1.0, np.nan, np.inf, -np.inf, 1e-30, 1e4, -1e4, 88.7, 104.0, 11.0, 0.5]
UNIT_SPECIAL = [0.0, 1.0, np.nan, 1e-30, 1 - 2**-10, 1e-7, 0.5]


def _floats(draw, shape, special, low, high) -> np.ndarray:
    """Values drawn from ``special`` or uniformly from [low, high]."""
    values = draw(st.lists(st.one_of(st.sampled_from(special), st.floats(low, high)),
                           min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    return np.asarray(values, np.float64).reshape(shape)


@st.composite
def calls(draw, loss_id: str):
    """(first, second, kwargs) of one valid call of ``loss_id`` with edge values and random params."""
    loss = CATALOG[loss_id]
    dtype = numpy_dtype(draw(st.sampled_from(DTYPES)))
    if loss.sequence:
        return _ctc_call(draw, loss, dtype)
    n = draw(st.integers(0 if loss.id != "root_mean_squared_error" else 1, 3))
    c = draw(st.integers(1, 4))
    shape = (n, c)
    kw: dict = {"reduction": draw(st.sampled_from(loss.reductions))}
    variant = draw(st.sampled_from((None, *loss.variants)))
    if variant is not None:
        kw["variant"] = variant
    if "log_input" in loss.param_names:
        clipped = variant is not None and get_variant(variant).overrides.get("clip") is not None
        kw["log_input"] = False if clipped else draw(st.booleans())  # the clip variant takes probabilities
    role = loss.inputs[0].role
    unit_first = role == "probabilities" or (loss.id == "kl_divergence" and not kw.get("log_input", True))
    if unit_first:
        first = _floats(draw, shape, UNIT_SPECIAL, 0, 1)
    elif role == "log_probabilities":
        first = _floats(draw, shape, [0.0, -np.inf, np.nan, -1e4, -30.0], -50, 0)
    else:
        first = _floats(draw, shape, SPECIAL, -100, 100)
    second = None
    if loss.has_second:
        target = loss.inputs[1]
        if target.role == "labels":
            second = np.asarray(draw(st.lists(st.integers(-1, c - 1), min_size=n, max_size=n)), np.int64)
            kw["ignore_index"] = -1
        elif target.domain == "values in [0, 1]":
            second = _floats(draw, shape, UNIT_SPECIAL, 0, 1)
        else:
            second = _floats(draw, shape, [0.0, 1.0, np.nan, 1e-30, -0.5, 2.0], -2, 2).astype(dtype)
        if target.domain.startswith("non-negative"):
            second = np.abs(second)
        if second.dtype.kind == "f":
            second = second.astype(dtype)
    if loss.id == "poisson_nll" and not kw["log_input"]:  # rates
        first = np.abs(first)
    for name, menu in (("delta", [0.5, 1.0, 1e4]), ("beta", [0.0, 0.5, 1.0, 1e4]), ("full", [False, True]),
                       ("gamma", [0.0, 0.5, 2.0]), ("alpha", [None, 0.25])):
        if name in loss.param_names:
            kw[name] = draw(st.sampled_from(menu))
    if "label_smoothing" in loss.param_names:
        kw["label_smoothing"] = draw(st.sampled_from([0.0, 0.1, 1.0]))
    if "weight" in loss.param_names and draw(st.booleans()):
        kw["weight"] = _floats(draw, (c,), [0.0, 1.0, 1e-30, 1e4], 0, 5).astype(dtype)
    if "pos_weight" in loss.param_names and draw(st.booleans()):
        kw["pos_weight"] = _floats(draw, (c,), [0.0, 1.0, 1e4], 0, 5).astype(dtype)
    with np.errstate(over="ignore"):
        return first.astype(dtype), second, kw


def _ctc_call(draw, loss, dtype) -> tuple:
    """CTC: logits [N, T, C] with edge values, labels [N, S] without the blank, lengths that may not fit."""
    n, t, c = draw(st.integers(0, 3)), draw(st.integers(1, 4)), draw(st.integers(2, 4))
    s = draw(st.integers(0, 3))
    blank = draw(st.sampled_from([0, c - 1]))
    labels = np.asarray(draw(st.lists(st.sampled_from([k for k in range(c) if k != blank]), min_size=n * s,
                                      max_size=n * s)), np.int64).reshape(n, s)
    kw = {"reduction": draw(st.sampled_from(loss.reductions)), "blank": blank,
          "zero_infinity": draw(st.booleans()),
          "input_lengths": np.asarray(draw(st.lists(st.integers(0, t), min_size=n, max_size=n)), np.int64),
          "target_lengths": np.asarray(draw(st.lists(st.integers(0, s), min_size=n, max_size=n)), np.int64)}
    variant = draw(st.sampled_from((None, *loss.variants)))
    if variant is not None:
        kw["variant"] = variant
    with np.errstate(over="ignore"):
        return _floats(draw, (n, t, c), SPECIAL, -100, 100).astype(dtype), labels, kw


@pytest.mark.parametrize("loss_id", sorted(k for k, loss in CATALOG.items() if not loss.grad_params))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_scales_finite_and_non_negative_where_truth_finite(loss_id, data):  # linear: test_reference_linear
    first, second, kw = data.draw(calls(loss_id))
    ref = evaluate(loss_id, first, second, **kw)
    for name, truth, scale in (("value", ref.value, ref.scale_value), ("grad", ref.grad, ref.scale_grad)):
        assert np.shape(scale) == np.shape(truth), name
        finite = np.isfinite(np.asarray(truth, np.float64))
        scale = np.asarray(scale, np.float64)
        assert np.all(np.isfinite(scale[finite])), (name, scale, truth)
        assert np.all(scale[finite] >= 0), (name, scale, truth)


def _catalog_ce_scales(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The catalog's per-sample CE scales for weighted smoothed targets t (finite logits), oracle values."""
    c = x.shape[1]
    p = np.asarray(oracle.value_and_grad("softmax", x)[0], np.float64)
    log_p = np.asarray(oracle.value_and_grad("log_softmax", x)[0], np.float64)
    x64 = np.asarray(x, np.float64)
    lse = (x64 - log_p)[:, :1]  # x_c - log_softmax(x)_c is the same for every c
    a = 1 + np.abs(x64) + np.abs(lse)
    f = 1 + np.log2(c)
    ta = np.abs(t)
    return f * np.sum(ta * a, axis=1), f * (np.sum(ta, axis=1, keepdims=True) * p + ta) * a


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps, weighted, variant", [(0.0, False, None), (0.1, False, None), (0.1, True, None),
                                                    (1.0, False, None), (0.3, False, "smoothing_over_c_minus_1"),
                                                    (0.0, True, None)])
def test_cross_entropy_scales_follow_the_catalog(dtype, eps, weighted, variant):
    """Dense and sparse CE (labels-only path included) give the catalog's S, |t'| term and all."""
    np_dtype = numpy_dtype(dtype)
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((5, 7)) * 4).astype(np_dtype)
    labels = rng.integers(0, 7, 5)
    w = rng.uniform(0.1, 3, 7).astype(np_dtype) if weighted else None
    smooth = np.asarray(oracle.value_and_grad("smooth_labels", np.eye(7, dtype=np_dtype)[labels], label_smoothing=eps,
                                              variant=variant)[0], np.float64)
    t = smooth * (np.asarray(w, np.float64) if weighted else 1.0)
    want_v, want_g = _catalog_ce_scales(x, t)
    kw = {"label_smoothing": eps, "variant": variant, **({"weight": w} if weighted else {})}
    for ref in (evaluate("sparse_softmax_cross_entropy", x, labels, **kw),
                evaluate("softmax_cross_entropy", x, np.eye(7, dtype=np_dtype)[labels], **kw)):
        np.testing.assert_allclose(ref.scale_value, want_v, rtol=1e-6)
        np.testing.assert_allclose(ref.scale_grad, want_g, rtol=1e-6)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_nan_row_leaves_the_other_rows_scales_alone(reduction):
    """Reported: logits [[nan, 0, 1], [0, 1, 2]], labels [0, 1], weight [0.5, 2, 1] gave S_grad[1, 1] < 0."""
    x = np.array([[np.nan, 0, 1], [0, 1, 2]])
    w = np.array([0.5, 2.0, 1.0])
    ref = evaluate("sparse_softmax_cross_entropy", x, np.array([0, 1]), weight=w, reduction=reduction)
    _, want_g = _catalog_ce_scales(x[1:], np.array([[0.0, 2.0, 0.0]]))
    d = 2.5 if reduction == "mean" else 1.0  # the weighted mean divides by w_0 + w_1
    np.testing.assert_allclose(ref.scale_grad[1:], want_g / d, rtol=1e-12)
    assert not ref.scale_grad[0].any()  # the NaN row's truth is NaN: no scale
