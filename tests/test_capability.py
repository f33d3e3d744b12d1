"""Not applicable is not a check: what an API does not offer is kept apart from what a framework
cannot do here (``Reason.kind``), and only the latter becomes an ``unsupported`` check."""

from __future__ import annotations

import pickle

import pytest

from lossconf.adapters.base import NOT_APPLICABLE, UNSUPPORTED, Impl, Reason
from lossconf.capability import not_applicable, summary, tally


def _impl(**kw) -> Impl:
    return Impl("sparse_softmax_cross_entropy", "np.ce", lambda x, y, **p: x, dtypes=("float32", "float64"),
                reductions=("none",), **kw)


def test_a_missing_dtype_is_unsupported_a_missing_reduction_or_parameter_is_not_applicable():
    impl = _impl()
    assert impl.unsupported_reason("float16", {"reduction": "none"}, (2, 3)).kind == UNSUPPORTED
    assert impl.unsupported_reason("float32", {"reduction": "mean"}, (2, 3)).kind == NOT_APPLICABLE
    assert impl.unsupported_reason("float32", {"reduction": "none", "label_smoothing": 0.1}, (2, 3)).kind \
        == NOT_APPLICABLE
    assert impl.unsupported_reason("float32", {"reduction": "none", "label_smoothing": 0.0}, (2, 3)) is None


def test_restrict_says_which_kind():
    plain = _impl(restrict=lambda p, s, t: "classes on axis 1 only")
    shortfall = _impl(restrict=lambda p, s, t: Reason("kernel corrupts memory", UNSUPPORTED))
    assert plain.unsupported_reason("float32", {"reduction": "none"}, (2, 3)).kind == NOT_APPLICABLE
    assert shortfall.unsupported_reason("float32", {"reduction": "none"}, (2, 3)).kind == UNSUPPORTED


def test_reason_keeps_its_kind_across_the_worker_pipe_and_rejects_unknown_kinds():
    back = pickle.loads(pickle.dumps(Reason("x", UNSUPPORTED)))
    assert back == "x" and back.kind == UNSUPPORTED
    with pytest.raises(ValueError, match="kind"):
        Reason("x", "maybe")


def test_only_not_applicable_reasons_and_value_only_gradients_leave_the_plan():
    desc = {"api": "np.ce", "grad": True}
    assert not_applicable(Reason("no sum"), desc, "value") == "no sum"
    assert not_applicable(Reason("no float16", UNSUPPORTED), desc, "value") is None
    assert not_applicable(None, desc, "value") is None
    assert "no gradient" in not_applicable(None, {"api": "np.ce", "grad": False}, "grad")
    store: dict = {}
    tally(store, "np", "ce", "no sum")
    tally(store, "np", "ce", "no sum")
    assert summary(store) == {"total": 2, "by_impl": {"np:ce": {"no sum": 2}}}
