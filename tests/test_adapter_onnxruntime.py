"""ONNX Runtime adapter: framework-specific checks.

onnxruntime is never imported here: calls go to a lossconf worker process (``framework("onnxruntime")``).
Expected numbers come from the tutorial documents (printed values) and the ONNX operator specification,
never from ONNX Runtime itself.
"""

from __future__ import annotations

import numpy as np
import pytest
from adapter_checks import LABELS, LOGITS, REL1_PRINTED, assert_keeps_dtype_and_shape, assert_names_unique

WHY = "adapter_checks:unsupported_reason_in_worker"
LOSSES = ["SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss(LogSoftmax)"]


@pytest.fixture(scope="module")
def fw(framework):
    return framework("onnxruntime")


def _sessions_built(adapter, shapes: list[tuple]) -> int:
    """How many InferenceSessions Softmax float32 needs for inputs of ``shapes`` (runs in the worker)."""
    from lossconf.adapters.onnxruntime import _session

    impl = next(i for i in adapter.implementations() if i.name == "Softmax")
    before = _session.cache_info().currsize
    for shape in shapes:
        adapter.value_and_grad(impl, np.ones(shape), None, {"reduction": "none", "axis": -1}, "float32")
    return _session.cache_info().currsize - before


def test_table_names_are_unique_and_all_value_only(fw) -> None:
    assert_names_unique(fw)
    assert not any(i["grad"] for i in fw.impls.values())  # the plain wheel has no gradient path


def test_environment_names_provider_and_opset(fw) -> None:
    flags = fw.describe["environment"]["flags"]
    assert flags["provider"] == "CPUExecutionProvider" and int(flags["opset"]) >= 13


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_every_impl_keeps_dtype_and_shape(fw, dtype: str) -> None:
    assert_keeps_dtype_and_shape(fw, dtype)


@pytest.mark.parametrize("name", LOSSES)
def test_reproduces_document_rel1_float32(fw, name: str) -> None:
    """documents/001 prints rel1 = [0.02215516 3.09967351] from float32 softmax cross-entropy."""
    value, _ = fw.call(name, "float32", LOGITS.astype(np.float32), LABELS)
    np.testing.assert_allclose(value, REL1_PRINTED, rtol=2e-7)


@pytest.mark.parametrize("name", LOSSES)
def test_mean_divides_by_weights_of_kept_targets(fw, name: str) -> None:
    """ONNX spec: mean = sum(w[y_i] l_i) / sum(w[y_i]) over samples whose label is not ignore_index."""
    logits, weight = LOGITS.astype(np.float32), np.array([1.0, 2.0, 3.0], np.float32)  # w[y] = [3, 2]
    value, _ = fw.call(name, "float32", logits, LABELS, {"weight": weight, "reduction": "mean"})
    np.testing.assert_allclose(value, (3 * REL1_PRINTED[0] + 2 * REL1_PRINTED[1]) / 5, rtol=1e-6)
    value, _ = fw.call(name, "float32", logits, LABELS, {"ignore_index": 1, "reduction": "mean"})
    np.testing.assert_allclose(value, REL1_PRINTED[0], rtol=1e-6)


def test_classes_on_axis_one_only(fw) -> None:
    assert fw.run(WHY, "SoftmaxCrossEntropyLoss", {"axis": 1}, (2, 3, 4), (2, 4)) is None
    assert "axis 1" in fw.run(WHY, "SoftmaxCrossEntropyLoss", {"axis": -1}, (2, 3, 4), (2, 4))


def test_one_session_serves_every_shape(fw) -> None:
    """Inputs are declared without a shape: new shapes reuse the cached session of (op, dtype, attrs)."""
    assert fw.run("test_adapter_onnxruntime:_sessions_built", [(2, 3), (5, 7), (1, 2, 9)]) <= 1


def test_this_process_never_imported_onnxruntime(fw) -> None:
    import sys

    assert "onnxruntime" not in sys.modules
