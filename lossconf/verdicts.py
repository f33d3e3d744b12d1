"""Checks and verdicts: one (case x implementation x dtype x quantity) judged against the truth.

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

import numpy as np

from lossconf.cases import Case
from lossconf.errormodel import Comparison, compare
from lossconf.known import Known
from lossconf.reference import evaluate, kappa, numpy_dtype
from lossconf.reference.dtypes import dtype_name

VERDICTS = ("pass", "variant", "fail", "known", "error", "unsupported", "skipped")
QUANTITIES = ("value", "grad")
SMALL = 16  # results with at most this many elements are stored in full


def check_id(adapter: str, impl: str, dtype: str, case_id: str, quantity: str) -> str:
    """Readable, unique id of a check, e.g. ``torch:cross_entropy-float16-doc001_rel1-value``."""
    return f"{adapter}:{impl}-{dtype}-{case_id}-{quantity}"


def cast_inputs(case: Case, dtype: str) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """The case's inputs in the dtype under test: first, float second and float array params."""
    dt = numpy_dtype(dtype)
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
    """Reference truths and error-model scales per (case, dtype, variant), computed once."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str, str | None], tuple] = {}
        self._lock = threading.Lock()
        self.seconds = 0.0  # time spent in the reference, for the run's breakdown

    def get(self, case: Case, dtype: str, variant: str | None = None) -> tuple:
        """(value, grad, S_value, S_grad) of the reference on the cast inputs."""
        key = (case.id, dtype, variant)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        start = time.perf_counter()
        first, second, params = cast_inputs(case, dtype)
        ref = evaluate(case.loss, first, second, variant=variant, **params)
        result = (ref.value, ref.grad, ref.scale_value, ref.scale_grad)
        with self._lock:
            self._cache[key] = result
            self.seconds += time.perf_counter() - start
        return result


def base_record(case: Case, adapter: str, impl: dict, dtype: str, quantity: str) -> dict:
    """The identifying fields of a check record, with every measured field empty."""
    return {
        "id": check_id(adapter, impl["name"], dtype, case.id, quantity),
        "case": case.id, "adapter": adapter, "impl": impl["name"], "api": impl["api"], "loss": case.loss,
        "dtype": dtype, "quantity": quantity, "verdict": "error",
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
    known: list[Known],
    version: str,
) -> dict:
    """Fill ``record`` with the comparison and the verdict for one returned array."""
    quantity = record["quantity"]
    pick = 0 if quantity == "value" else 1
    truth_all = truths.get(case, dtype)
    truth, scale = truth_all[pick], truth_all[pick + 2]
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
    matching = [kn for kn in known if kn.matches(record["adapter"], impl["name"], quantity, dtype, case.id, version)]
    if cmp.ok:
        record["verdict"] = "pass"
        if matching:
            record["known"], record["stale"] = matching[0].id, True
        return record
    if impl.get("variant"):
        v_all = truths.get(case, dtype, impl["variant"])
        v_cmp = compare(got, v_all[pick], v_all[pick + 2], dtype, k)
        if v_cmp.ok:
            _fill(record, v_cmp, got, v_all[pick], k)
            record.update(verdict="variant", variant=impl["variant"])
            return record
    why = cmp.nonfinite_mismatch or f"error {cmp.error:.3g} = {cmp.ulps:.3g} ulp exceeds bound {cmp.bound:.3g}"
    if matching:
        record.update(verdict="known", known=matching[0].id, message=f"{why} (known: {matching[0].description})")
    else:
        record.update(verdict="fail", message=why)
    return record


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
