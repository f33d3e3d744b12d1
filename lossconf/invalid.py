"""Invalid inputs: out-of-domain calls, and how a framework answers them (case kind ``invalid``).

Sparse labels out of range or negative (other than ``ignore_index``), float or NaN labels,
probabilities outside [0, 1] for the probability losses, targets whose shape does not match, an empty
class axis. These cases have no truth: the reference itself rejects them (its validation raises). A
check on one is judged by its own rule (``judge_invalid``):

- the call raised a clear error: ``pass`` (raises);
- the result is NaN (the value is undefined there): ``pass`` (NaN);
- a number came back silently: ``fail``, unless the implementation declares a variant that
  documents it (probabilities clipped to [eps, 1 - eps]: ``variant``) or a known deviation covers it;
- the worker crashed or hung: ``fail`` (a crash is not a clear error).

Every row of every case is invalid, so any NaN in a result is the NaN of an invalid row. Cases run in
float32 only: how a framework validates its input does not depend on the dtype.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np

from lossconf.case import Case, make_case

DTYPES = ("float32",)
BEHAVIOURS = ("raises", "NaN", "number", "crashed")  # how a check's message starts
CLIPPING_VARIANTS = ("clip_probabilities_1e-7", "normalize_then_clip_1e-7", "clip_and_offset_1e-7")
_LOGITS = [[0.5, -0.25, 2.0], [1.0, 0.0, -1.0]]
_NAN = math.nan


def _case(case_id: str, loss: str, first, second, what: str, params: dict | None = None,
          float_labels: bool = False) -> Case:
    """An invalid case; ``float_labels`` keeps float labels (``make_case`` would make them integers)."""
    provenance = {"invalid": what, "conforming": "raise a clear error, or return NaN"}
    if float_labels:
        return Case(case_id, loss, np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64),
                    {"reduction": "none", **(params or {})}, "invalid", provenance, DTYPES, what)
    return make_case(case_id, loss, first, second, kind="invalid", params=params or {}, provenance=provenance,
                     dtypes=DTYPES, note=what)


def invalid_cases() -> list[Case]:
    """The invalid-input catalog, one case per (loss, kind of invalid input)."""
    sparse, dense = "sparse_softmax_cross_entropy", "softmax_cross_entropy"  # dense C = 0: the empty sum 0 is defined
    empty = np.zeros((2, 0))
    return [
        _case("inv_sparse_label_eq_c", sparse, _LOGITS, [3, 3], "label equal to the class count C = 3"),
        _case("inv_sparse_label_above_c", sparse, _LOGITS, [7, 5], "labels far above the class count C = 3"),
        _case("inv_sparse_label_negative", sparse, _LOGITS, [-1, -2], "negative labels (no ignore_index set)"),
        _case("inv_sparse_label_negative_not_ignored", sparse, _LOGITS, [-2, -3],
              "negative labels other than ignore_index = -1", params={"ignore_index": -1}),
        _case("inv_sparse_label_float", sparse, _LOGITS, [1.5, 0.5], "float labels 1.5 and 0.5", float_labels=True),
        _case("inv_sparse_label_nan", sparse, _LOGITS, [_NAN, _NAN], "NaN labels", float_labels=True),
        _case("inv_sparse_label_shape", sparse, _LOGITS, [0, 1, 2], "3 labels for 2 samples"),
        _case("inv_sparse_empty_classes", sparse, empty, [0, 0], "an empty class axis (C = 0)"),
        _case("inv_sce_target_shape", dense, _LOGITS, np.full((2, 4), 0.25), "targets [2, 4] for logits [2, 3]"),
        _case("inv_bce_p_above_one", "binary_cross_entropy", [1.5, 2.0], [1.0, 0.0], "probabilities 1.5 and 2"),
        _case("inv_bce_p_negative", "binary_cross_entropy", [-0.5, -0.1], [1.0, 0.0], "probabilities -0.5, -0.1"),
        _case("inv_bce_shape", "binary_cross_entropy", [0.2, 0.5, 0.7], [1.0, 0.0, 1.0, 0.0],
              "4 targets for 3 probabilities"),
        _case("inv_cce_p_outside", "categorical_cross_entropy", [[1.5, -0.5, 0.0], [-0.2, 0.6, 0.6]],
              [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], "probabilities outside [0, 1] (rows still sum to 1)"),
        _case("inv_cce_shape", "categorical_cross_entropy", [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]],
              np.full((2, 4), 0.25), "targets [2, 4] for probabilities [2, 3]"),
        _case("inv_sigce_shape", "sigmoid_cross_entropy", [0.5, -1.0, 2.0], [1.0, 0.0, 1.0, 0.0],
              "4 targets for 3 logits"),
        _case("inv_mse_shape", "mean_squared_error", [[1.0, 2.0, 3.0], [0.0, 1.0, 2.0]], np.ones((2, 4)),
              "targets [2, 4] for predictions [2, 3] (not broadcastable)"),
        _case("inv_kl_shape", "kl_divergence", np.log([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]), np.full((2, 4), 0.25),
              "targets [2, 4] for log-probabilities [2, 3]"),
    ]


def behaviour(record: dict) -> str:
    """What the implementation did on an invalid input (one of ``BEHAVIOURS``), from the check's message."""
    head = record.get("message", "").split(":", 1)[0]
    return head if head in BEHAVIOURS else "crashed"


_ERROR_LINE = re.compile(r"^\s*(\w+\.)*\w*(Error|Exception)\b.*")


def _error_line(text: str) -> str:
    """The line of a worker's exception text that names the error (the last ``XxxError: ...`` line)."""
    lines = [m.group(0).strip() for m in map(_ERROR_LINE.match, text.splitlines()) if m]
    hint = [line.strip() for line in text.splitlines() if "Hint:" in line]  # Paddle's enforce message
    return ((hint or lines or [text.strip() or "an exception"])[-1])[:300]


def _probabilities_out_of_range(case: Case) -> bool:
    """The case's first input holds probabilities outside [0, 1] (what a documented clip answers)."""
    from lossconf.reference.catalog import get_loss

    return get_loss(case.loss).inputs[0].role == "probabilities" and bool(np.any((case.first < 0) | (case.first > 1)))


def judge_invalid(record: dict, case: Case, impl: dict, got: np.ndarray | None = None,
                  failure: tuple[str, str] | None = None) -> dict:
    """Fill ``record`` for an invalid case: ``failure`` is (kind, text) when the call did not return
    (kind 'error': it raised; 'crash'/'timeout': the worker died or hung), else ``got`` is the result."""
    if failure is not None:
        kind, text = failure
        if kind == "error":
            record.update(verdict="pass", message=f"raises: {_error_line(text)}")
        else:
            record.update(verdict="fail", message=f"crashed: {kind} on invalid input instead of a clear error: {text}")
        return record
    if got is None:
        record["message"] = "the adapter returned no gradient"
        return record
    values = np.asarray(got, dtype=np.float64)
    if values.size and np.isnan(values).any():
        record.update(verdict="pass", message="NaN: the undefined value is NaN")
        return record
    shown = values.ravel()[:4].tolist()
    record["got_values"] = values.ravel().tolist() if values.size <= 16 else None
    record["got"] = float(values.ravel()[0]) if values.size else None
    what = case.provenance.get("invalid", "invalid input")
    if impl.get("variant") in CLIPPING_VARIANTS and _probabilities_out_of_range(case):
        record.update(verdict="variant", variant=impl["variant"],
                      message=f"number: {shown} for {what}, as the declared clip to [eps, 1 - eps] documents")
        return record
    record.update(verdict="fail", message=f"number: silently returned {shown} (shape {list(values.shape)}) for {what}")
    return record


def run_invalid_job(cases: list[Case], impl: dict, base: Callable[[Case, str], dict], check_ids: list[str],
                    call: Callable[[], tuple]) -> list[tuple[dict, Case]]:
    """Run one invalid case through ``call`` (the framework call; raises an exception with ``kind``
    when it did not return) and judge its value and gradient checks."""
    case = cases[0]
    try:
        value, grad = call()[:2]
        outcomes = {"value": {"got": value}, "grad": {"got": grad}}
    except Exception as exc:  # the worker's failure: raised, crashed or timed out
        failure = (getattr(exc, "kind", "error"), str(exc))
        outcomes = {"value": {"failure": failure}, "grad": {"failure": failure}}
    out = []
    for quantity, outcome in outcomes.items():
        record = base(case, quantity)
        if record["id"] in check_ids:
            out.append((judge_invalid(record, case, impl, **outcome), case))
    return out
