"""ONNX Runtime adapter: one-node ONNX models of the standard's loss and activation operators, run on
the CPU execution provider. It checks ONNX Runtime's kernels and, through them, the ONNX operator
specification's own semantics (https://onnx.ai/onnx/operators/).

Conventions a reader should know before the table:
- every model is built with ``onnx.helper`` from one operator (``NegativeLogLikelihoodLoss`` after a
  ``LogSoftmax``, the composition the spec's own SoftmaxCrossEntropyLoss function uses, is two); inputs
  have no declared shape, so one ``InferenceSession`` serves every shape and is cached per
  (operator, dtype, attributes, optional inputs);
- values only: the ``onnxruntime`` wheel has no gradient path (training builds ship as the separate
  ``onnxruntime-training`` package), so every implementation is ``grad=False``;
- the loss operators take classes on axis 1 (``[N, C, d1, ...]``), like torch;
- bfloat16 is left out: the CPU provider has no bfloat16 kernel for these operators
  ("NOT_IMPLEMENTED: Could not find an implementation for Sigmoid(13)" and the like).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from lossconf.adapters.base import Impl, NumpyAdapter

OPSET = 21  # SoftmaxCrossEntropyLoss and NegativeLogLikelihoodLoss: opset 13+; Softmax on one axis: 13+
DTYPES = ("float16", "float32", "float64")
NONE = ("none",)
_SPEC = "https://onnx.ai/onnx/operators/onnx__"


def _class_axis_one(params: dict, shape: tuple, second_shape: tuple | None = None) -> str | None:
    """The ONNX loss operators take scores [N, C, d1, ...]: classes on axis 1, at least 2-D."""
    axis = params.get("axis", -1)
    if len(shape) < 2 or axis % len(shape) != 1:
        return f"scores must be [N, C, ...] with classes on axis 1 (got axis={axis}, shape={shape})"
    return None


@functools.cache
def _session(ops: tuple[tuple[str, tuple], ...], dtype: str, inputs: tuple[str, ...]) -> Any:
    """An InferenceSession for a chain of nodes ``ops`` ((op_type, attribute items), ...): the first
    node reads ``inputs[0]`` (and, for a loss, the labels and optional weights), each next node the
    previous output."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    elem = {"float16": TensorProto.FLOAT16, "float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}[dtype]
    kinds = {"x": elem, "labels": TensorProto.INT64, "weights": elem}
    nodes, previous = [], inputs[0]
    for k, (op, attrs) in enumerate(ops):
        out = f"y{k}"
        node_inputs = [previous] + (list(inputs[1:]) if op.endswith("Loss") else [])
        nodes.append(helper.make_node(op, node_inputs, [out], **dict(attrs)))
        previous = out
    graph = helper.make_graph(
        nodes, "lossconf", [helper.make_tensor_value_info(n, kinds[n], None) for n in inputs],
        [helper.make_tensor_value_info(previous, elem, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    options = ort.SessionOptions()
    options.log_severity_level = 4  # a failing kernel raises with its message; no duplicate log on stderr
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _run(ops: list[tuple[str, dict]], x: np.ndarray, labels: np.ndarray | None = None,
         weights: np.ndarray | None = None) -> np.ndarray:
    """Run the (cached) model of ``ops`` on ``x`` (and labels/weights for a loss)."""
    feeds = {"x": x}
    if labels is not None:
        feeds["labels"] = labels.astype(np.int64)
    if weights is not None:
        feeds["weights"] = weights
    key = tuple((op, tuple(sorted(attrs.items()))) for op, attrs in ops)
    return _session(key, x.dtype.name, tuple(feeds)).run(None, feeds)[0]


def _loss_attrs(reduction: str, ignore_index: int | None) -> dict:
    return {"reduction": reduction, **({} if ignore_index is None else {"ignore_index": int(ignore_index)})}


class OnnxRuntimeAdapter(NumpyAdapter):
    """ONNX Runtime (CPU execution provider): SoftmaxCrossEntropyLoss, LogSoftmax + NegativeLogLikelihoodLoss,
    Softmax, LogSoftmax, Sigmoid."""

    name = "onnxruntime"
    module = "onnxruntime"

    def load(self) -> None:
        """Import ONNX Runtime (sessions are built lazily per operator, dtype and attributes)."""
        import onnxruntime  # noqa: F401

        self.device = "cpu"

    def environment(self) -> dict:
        """onnxruntime and onnx versions, the execution provider and the opset used."""
        import onnx

        return {**super().environment(), "onnx": onnx.__version__, "provider": "CPUExecutionProvider",
                "opset": OPSET}

    def implementations(self) -> list[Impl]:
        """The ONNX operators that implement catalog losses."""

        def softmax_ce(x, y, reduction, weight=None, ignore_index=None, axis=1):
            return _run([("SoftmaxCrossEntropyLoss", _loss_attrs(reduction, ignore_index))], x, y, weight)

        def nll_log_softmax(x, y, reduction, weight=None, ignore_index=None, axis=1):
            ops = [("LogSoftmax", {"axis": 1}), ("NegativeLogLikelihoodLoss", _loss_attrs(reduction, ignore_index))]
            return _run(ops, x, y, weight)

        def along_axis(op: str):
            return lambda x, _, reduction, axis=-1: _run([(op, {"axis": axis})], x)

        common = {"dtypes": DTYPES, "grad": False}
        return [
            Impl(
                "sparse_softmax_cross_entropy", "onnx SoftmaxCrossEntropyLoss", softmax_ce,
                name="SoftmaxCrossEntropyLoss", params=("weight", "ignore_index", "axis"), restrict=_class_axis_one,
                note="mean divides by the summed weights of kept targets (" + _SPEC + "SoftmaxCrossEntropyLoss.html)",
                **common,
            ),
            Impl(
                "sparse_softmax_cross_entropy", "onnx NegativeLogLikelihoodLoss", nll_log_softmax,
                name="NegativeLogLikelihoodLoss(LogSoftmax)", composed=True,
                params=("weight", "ignore_index", "axis"), restrict=_class_axis_one,
                note="LogSoftmax(axis=1) then NegativeLogLikelihoodLoss (" + _SPEC
                + "NegativeLogLikelihoodLoss.html)", **common,
            ),
            Impl("softmax", "onnx Softmax", along_axis("Softmax"), name="Softmax", params=("axis",), reductions=NONE,
                 **common),
            Impl("log_softmax", "onnx LogSoftmax", along_axis("LogSoftmax"), name="LogSoftmax",
                 params=("axis",), reductions=NONE,
                 **common),
            Impl("sigmoid", "onnx Sigmoid", lambda x, _, reduction: _run([("Sigmoid", {})], x), name="Sigmoid",
                 reductions=NONE, **common),
        ]
