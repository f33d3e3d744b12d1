"""Checks and verdicts: one (case x implementation x dtype x mode x quantity) judged against the truth.

Verdicts, in the order a check is judged:

- ``error``: the call raised, crashed, timed out, or returned the wrong shape or dtype;
- ``pass``: within the error-model bound of the canonical truth (``lossconf.errormodel``);
- ``variant``: not canonical, but within the bound of the truth of the variant the implementation
  declares (a catalog variant with a citation);
- ``known``: matches a registered known deviation (upstream link, version range);
- ``fail``: none of the above.

``unsupported`` (declared by the implementation) and ``skipped`` (framework not installed) are set
without calling anything. Nothing that did not run is ever a pass.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping

import numpy as np

from lossconf.cases import Case
from lossconf.errormodel import Comparison, compare, compare_rows, finfo, got_shape_rows
from lossconf.known import Known
from lossconf.known_models import evaluate_model, input_facts
from lossconf.reference import Reference, evaluate, get_loss, kappa, numpy_dtype
from lossconf.reference.dtypes import dtype_name
from lossconf.truthcache import TruthCache, content_key

VERDICTS = ("pass", "variant", "fail", "known", "error", "unsupported", "skipped")
DETAILED = ("fail", "error", "known", "variant")  # verdicts shown with inputs and a reproduction
QUANTITIES = ("value", "grad")
SMALL = 16  # results with at most this many elements are stored in full


def check_id(adapter: str, impl: str, dtype: str, case_id: str, quantity: str, mode: str = "") -> str:
    """Readable, unique id of a check, e.g. ``torch:cross_entropy-float16-doc001_rel1-value``; a mode
    other than the adapter's default is named after the implementation: ``torch:cross_entropy@compile-...``."""
    return f"{adapter}:{impl}{'@' + mode if mode else ''}-{dtype}-{case_id}-{quantity}"


def cast_inputs(case: Case, dtype: str) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """The case's inputs in the dtype under test: first, float second and float array params."""
    dt = numpy_dtype(dtype)
    with np.errstate(over="ignore"):  # huge edge values become inf in small dtypes: that is the case
        first = case.first.astype(dt)
        second = case.second
        if second is not None and np.issubdtype(second.dtype, np.floating):
            second = second.astype(dt)
    params = {
        k: v.astype(dt) if isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.floating) else v
        for k, v in case.params.items()
    }
    return first, second, params


class Truths:
    """Reference truths and error-model scales per (cases, dtype, variant), computed once.

    Several implementations of one loss share truths, so they are cached; the cache is bounded
    (least recently used out first) so that large-scale cases do not pile up in memory. With ``disk``
    (``lossconf.truthcache``), truths are also kept across runs, keyed by content.
    """

    def __init__(self, budget_bytes: int = 1 << 29, disk: TruthCache | None = None) -> None:
        self._cache: OrderedDict[tuple, tuple] = OrderedDict()
        self._bytes = 0
        self._budget = budget_bytes
        # the last truth too large for the cache: a check's quantities (value, then each gradient) are
        # judged one after another, so it is asked for again at once; dropped at the next miss
        self._large: tuple | None = None
        self._lock = threading.Lock()
        self.disk = disk
        self.seconds = 0.0  # time spent in the reference (or reading its cached truths), for the breakdown
        self.evaluated = 0  # reference evaluations in this run (the rest came from memory or disk)

    def get(self, case: Case, dtype: str, variant: str | None = None) -> tuple:
        """(value, grad, S_value, S_grad, further gradients) of the reference on the case's cast inputs;
        ``truth_of`` picks one quantity."""
        return self.get_batch([case], dtype, variant)

    def get_batch(self, cases: list[Case], dtype: str, variant: str | None = None) -> tuple:
        """The truth of several row-compatible cases concatenated along axis 0 (one reference call)."""
        key = (tuple(c.id for c in cases), dtype, variant)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
            if self._large is not None and self._large[0] == key:
                return self._large[1]
            self._large = None  # before evaluating: two large truths are never held at once
        start = time.perf_counter()
        parts = [cast_inputs(c, dtype) for c in cases]
        first = parts[0][0] if len(parts) == 1 else np.concatenate([p[0] for p in parts])
        second = parts[0][1] if len(parts) == 1 or parts[0][1] is None else np.concatenate([p[1] for p in parts])
        disk_key = None if self.disk is None else content_key(cases[0].loss, dtype, variant, first, second,
                                                                parts[0][2])
        result = None if disk_key is None else self.disk.get(disk_key)
        if result is None:
            ref = evaluate(cases[0].loss, first, second, variant=variant, **parts[0][2])
            result = truth_tuple(ref, cases[0].loss)
            if disk_key is not None:
                self.disk.put(disk_key, result)
            with self._lock:
                self.evaluated += 1
        size = sum(a.nbytes for a in result if a is not None)
        with self._lock:
            self.seconds += time.perf_counter() - start
            if size > self._budget // 4:
                self._large = (key, result)
                return result
            self._cache[key] = result
            self._bytes += size
            while self._bytes > self._budget:
                _, old = self._cache.popitem(last=False)
                self._bytes -= sum(a.nbytes for a in old if a is not None)
        return result


def truth_tuple(ref: Reference, loss: str) -> tuple:
    """A reference result as a flat tuple of arrays: (value, grad, S_value, S_grad), then (gradient,
    scale) of each further differentiable input in the catalog's order (``truth_of`` picks one)."""
    further = [a for q in get_loss(loss).quantities[2:] for a in ref.grads[q]]
    return (ref.value, ref.grad, ref.scale_value, ref.scale_grad, *further)


def truth_of(result: tuple, quantity: str, loss: str) -> tuple:
    """(truth, scale) of one quantity from a ``truth_tuple`` (KeyError-free: a model without the
    quantity gives (None, None))."""
    i = get_loss(loss).quantities.index(quantity)
    at = (0, 2) if i == 0 else (1, 3) if i == 1 else (2 * i, 2 * i + 1)
    return (result[at[0]], result[at[1]]) if at[1] < len(result) else (None, None)


def base_record(case: Case, adapter: str, impl: dict, dtype: str, quantity: str,
                mode: str = "", default_mode: bool = True) -> dict:
    """The identifying fields of a check record, with every measured field empty."""
    return {
        "id": check_id(adapter, impl["name"], dtype, case.id, quantity, "" if default_mode else mode),
        "case": case.id, "adapter": adapter, "impl": impl["name"], "api": impl["api"], "loss": case.loss,
        "dtype": dtype, "mode": mode, "quantity": quantity, "verdict": "error",
        "error": None, "ulps": None, "bound": None, "ratio": None, "kappa": None, "scale": None,
        "index": None, "truth": None, "got": None, "got_values": None, "truth_values": None,
        "variant": None, "known": None, "stale": False, "message": "", "seconds": 0.0,
    }


def _fill(record: dict, cmp: Comparison, got: np.ndarray, truth: np.ndarray, k: float) -> None:
    record.update(
        error=cmp.error, ulps=cmp.ulps, bound=cmp.bound, ratio=cmp.ratio, kappa=k, scale=cmp.scale,
        index=list(cmp.index) if cmp.index is not None else None,
    )
    if cmp.index is not None:
        record["truth"] = float(np.asarray(truth)[cmp.index])
        record["got"] = float(np.asarray(got).astype(np.float64)[cmp.index])
    if got.size <= SMALL:
        record["got_values"] = [float(v) for v in np.asarray(got, dtype=np.float64).ravel()]
        record["truth_values"] = [float(v) for v in np.asarray(truth, dtype=np.float64).ravel()]


def judge(
    record: dict,
    case: Case,
    impl: dict,
    dtype: str,
    got: np.ndarray,
    truths: Truths,
    flush: bool = False,
) -> dict:
    """Fill ``record`` with the comparison and the verdict (pass/variant/fail/error) for one result.

    ``flush``: the adapter declares flush-to-zero arithmetic (catalog variant ``flush_subnormals``).
    Known deviations are applied afterwards by ``apply_known``.
    """
    quantity = record["quantity"]
    truth, scale = truth_of(truths.get(case, dtype), quantity, case.loss)
    got = np.asarray(got)
    if got.shape != truth.shape:
        record["message"] = f"wrong shape: got {got.shape}, expected {truth.shape}"
        return record
    if dtype_name(got.dtype) != dtype:
        record["message"] = f"wrong dtype: got {dtype_name(got.dtype)}, expected {dtype}"
        return record
    k = kappa(case.loss, quantity)
    cmp = compare(got, truth, scale, dtype, k)
    _fill(record, cmp, got, truth, k)
    if cmp.ok:
        record["verdict"] = "pass"
        return record
    # the declared variant, then flush-to-zero, then both
    attempts = [(impl.get("variant"), False)] if impl.get("variant") else []
    if flush:
        attempts += [(None, True)] + ([(impl["variant"], True)] if impl.get("variant") else [])
    # IEEE propagation on +-inf inputs applies to every implementation, alone or with the above
    may_nan = ieee_nan_allowed(case, dtype, quantity)
    ieee = [] if may_nan is None else [(v, f, True) for v, f in [(None, False), *attempts]]
    for variant, ftz, inf_nan in [(v, f, False) for v, f in attempts] + ieee:
        v_truth, v_scale = (truth, scale) if variant is None else truth_of(
            truths.get(case, dtype, variant), quantity, case.loss)
        v_got = _ieee_filled(got, v_truth, may_nan) if inf_nan else got
        v_cmp = compare(v_got, v_truth, v_scale, dtype, k, flush=ftz)
        if v_cmp.ok:
            _fill(record, v_cmp, got, v_truth, k)
            names = [n for n in (IEEE_INF if inf_nan else None, variant, "flush_subnormals" if ftz else None) if n]
            record.update(verdict="variant", variant=names[0],
                          message="conforms to " + " with ".join(names))
            return record
    record["_got"] = got  # for known-deviation models; apply_known takes it out of the record
    record["_flush"] = flush
    claimed = impl.get("variant")
    if claimed or flush:  # explain the failure against the semantics the implementation declares
        v_truth, v_scale = (truth_of(truths.get(case, dtype, claimed), quantity, case.loss) if claimed
                            else (truth, scale))
        # with flush-to-zero declared, a flushed subnormal is not the error to report (nor to judge 'marginal' by)
        cmp = compare(got, v_truth, v_scale, dtype, k, flush=flush)
        _fill(record, cmp, got, v_truth, k)
        if claimed:
            record["variant"] = claimed
    why = cmp.nonfinite_mismatch or f"error {cmp.error:.3g} = {cmp.ulps:.3g} ulp exceeds bound {cmp.bound:.3g}"
    record.update(verdict="fail", message=f"does not conform to {claimed}: {why}" if claimed else why)
    return record


IEEE_INF = "ieee_inf_propagation"


def ieee_nan_allowed(case: Case, dtype: str, quantity: str) -> np.ndarray | None:
    """Where variant ``ieee_inf_propagation`` lets a result be NaN: the elements that turn NaN in the
    reference when the case's +-inf inputs (in the dtype) are NaN instead; None without a +-inf input."""
    first, second, params = cast_inputs(case, dtype)
    seconds = [] if second is None or not np.issubdtype(second.dtype, np.floating) else [second]
    if not any(np.isinf(a.astype(np.float64)).any() for a in [first, *seconds]):
        return None
    nan_first = np.where(np.isinf(first), np.nan, first).astype(first.dtype)
    nan_second = second if not seconds else np.where(np.isinf(second), np.nan, second).astype(second.dtype)
    try:
        ref = evaluate(case.loss, nan_first, nan_second, **params)
    except (ValueError, FloatingPointError):
        return None
    return np.isnan(np.asarray(truth_of(truth_tuple(ref, case.loss), quantity, case.loss)[0], dtype=np.float64))


def _ieee_filled(got: np.ndarray, truth: np.ndarray, may_nan: np.ndarray) -> np.ndarray:
    """``got`` with the NaNs that IEEE propagation explains replaced by the truth (judged as exact)."""
    fill = may_nan & np.isnan(got.astype(np.float64)) & ~np.isnan(truth)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(fill, truth.astype(got.dtype), got)


def check_facts(record: dict, case: Case, inputs: Iterable[str] | None = None) -> frozenset[str]:
    """What is true of a judged check and of its inputs in its dtype, for known deviations' ``when``
    and ``inputs`` conditions (of the input conditions, only those named in ``inputs`` when given)."""
    facts = input_facts(cast_inputs(case, record["dtype"]), record["dtype"], case.loss, only=inputs)
    if case.first.size and not np.all(np.isfinite(case.first)):
        facts.add("nonfinite_input")
    if record["verdict"] == "error":
        facts.add("error")
    truth, got = record.get("truth"), record.get("got")
    if isinstance(truth, float) and math.isfinite(truth):
        tiny = float(finfo(record["dtype"]).smallest_normal)
        if 0 < abs(truth) < tiny:
            facts.add("subnormal_truth")
    ratio = record.get("ratio")
    if isinstance(ratio, float) and ratio <= 2.0:
        facts.add("marginal")
    if got == 0 and isinstance(truth, float) and 0 < abs(truth) < 2 * float(finfo(record["dtype"]).smallest_normal):
        facts.add("zero_result_tiny_truth")
    if isinstance(got, float) and not math.isfinite(got):
        facts.add("nonfinite_result")
        if math.isnan(got):
            facts.add("nan_result")
    return frozenset(facts)


def judge_columns(
    cases: list[Case], dtype: str, quantity: str, got: np.ndarray | None, truths: Truths,
) -> list[Comparison | None]:
    """Judge one quantity of one framework call as columns: ``got`` stacks the cases' rows along axis 0
    (a single case: its whole result). One reference call and one vectorized comparison; the
    comparison of each case that passes, None for each case ``judge`` must look at (variants,
    flush-to-zero, wrong shape or dtype, messages)."""
    if got is None:
        return [None] * len(cases)
    truth, scale = truth_of(truths.get_batch(cases, dtype), quantity, cases[0].loss)
    got = np.asarray(got)
    if got.shape != truth.shape or dtype_name(got.dtype) != dtype:
        return [None] * len(cases)
    rows = [c.first.shape[0] for c in cases] if len(cases) > 1 else [got_shape_rows(got)]
    comparisons = compare_rows(got, truth, scale, dtype, kappa(cases[0].loss, quantity), rows)
    return [cmp if cmp.ok else None for cmp in comparisons]


def case_rows(cases: list[Case], got: np.ndarray) -> list[np.ndarray]:
    """The part of a stacked result that belongs to each case (the whole result for a single case)."""
    if len(cases) == 1:
        return [got]
    bounds = np.cumsum([0] + [c.first.shape[0] for c in cases])
    return [got[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def passing_record(case: Case, adapter: str, impl: dict, dtype: str, quantity: str, cmp: Comparison,
                   seconds: float, mode: str = "", default_mode: bool = True) -> dict:
    """The record of a passing check, straight from its comparison: identity and scalars, no arrays
    (``lossconf.records.slim`` form; expand it with ``base_record`` fields where a full one is needed)."""
    return {
        "id": check_id(adapter, impl["name"], dtype, case.id, quantity, "" if default_mode else mode),
        "case": case.id, "adapter": adapter, "impl": impl["name"], "dtype": dtype, "mode": mode,
        "quantity": quantity, "verdict": "pass",
        **{k: finite_or_str(getattr(cmp, k)) for k in ("error", "ulps", "bound", "ratio", "scale", "truth", "got")},
        "index": list(cmp.index) if cmp.index is not None else None, "seconds": seconds,
    }


def apply_known(record: dict, case: Case, known: list[Known], version: str | Mapping) -> dict:
    """Turn a fail or error matching a registered deviation into ``known``; mark passes it covers.

    An entry with a model matches a fail only where the result agrees with the model within the
    error-model bound (models are evaluated for non-passing checks only). A pass that an entry's
    case pattern or input condition covers is tagged ``stale`` (the deviation did not reproduce
    here); the run reports an entry as stale when none of its checks reproduce it.
    """
    got, flush = record.pop("_got", None), record.pop("_flush", False)
    quantity, dtype = record["quantity"], record["dtype"]
    candidates = [k for k in known if k.matches(record["adapter"], record["impl"], quantity, dtype,
                                                record["case"], version, facts=None,
                                                mode=record.get("mode", ""))]
    if not candidates:
        return record
    # only the input conditions some candidate asks for: one of them evaluates the reference again
    facts = check_facts(record, case, {name for k in candidates for name in k.inputs})
    candidates = [k for k in candidates if set(k.when) | set(k.inputs) <= facts]
    if record["verdict"] in ("fail", "error"):
        match = next((k for k in candidates if not k.model or _agrees_with_model(k.model, record, case, got, flush)),
                     None)
        if match is not None:
            record.update(verdict="known", known=match.id,
                          message=f"{record['message']} (known {match.id}: {match.description})")
    elif record["verdict"] in ("pass", "variant"):
        match = next((k for k in candidates if k.cases or k.inputs), None)
        if match is not None:
            record.update(known=match.id, stale=True)
    return record


def _agrees_with_model(model: str, record: dict, case: Case, got: np.ndarray | None, flush: bool = False) -> bool:
    """Whether the result agrees with the known deviation's model within the error-model bound (allowing
    flush-to-zero where the adapter declares it for the dtype)."""
    if got is None:
        return False
    quantity, dtype = record["quantity"], record["dtype"]
    out = evaluate_model(model, case.loss, cast_inputs(case, dtype), dtype, record.get("variant"))
    truth, scale = truth_of(out, quantity, case.loss)
    if truth is None or np.shape(truth) != np.shape(got):
        return False
    return compare(np.asarray(got), truth, scale, dtype, kappa(case.loss, quantity), flush=flush).ok


def summarize(checks: list[dict]) -> dict:
    """Counts per verdict and per adapter; every count adds up to ``total``."""
    by_verdict = dict.fromkeys(VERDICTS, 0)
    by_adapter: dict[str, dict[str, int]] = {}
    for c in checks:
        by_verdict[c["verdict"]] += 1
        by_adapter.setdefault(c["adapter"], dict.fromkeys(VERDICTS, 0))[c["verdict"]] += 1
    return {"total": len(checks), "by_verdict": by_verdict, "by_adapter": by_adapter}


def finite_or_str(x: object) -> object:
    """JSON-safe float: non-finite values become the strings 'nan', 'inf', '-inf'."""
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, list):
        return [finite_or_str(v) for v in x]
    return x
