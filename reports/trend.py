"""The trend view: one framework's results across versions (or devices), from merged results.

``lossconf sweep`` and a CI matrix merge runs of one adapter in several builds; ``lossconf.results.merge``
names each build ``adapter@version`` (``adapter@version-device`` when devices differ). This module lines
the builds up, oldest version first, and gives

- per implementation x dtype x quantity: the worst verdict and worst error/bound in each build;
- the checks whose verdict changes between builds, or whose error/bound moves by more than ``DRIFT`` x;
- per known deviation: the builds where it reproduces (measured, whatever its registered range says),
  against its registered ``versions`` range -- a contradiction either way is listed.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter, defaultdict
from types import SimpleNamespace

import numpy as np
from packaging.version import InvalidVersion, Version

from lossconf.known import Known
from lossconf.reports.agreement import as_float
from lossconf.verdicts import check_facts

DRIFT = 2.0  # an error/bound change by more than this factor is listed (as lossconf diff does)
MAX_ROWS = 200  # changed checks listed per adapter; the rest are counted
DEVIATES = ("fail", "error", "known")
ORDER = ("fail", "error", "known", "variant", "pass", "unsupported", "skipped")  # worst first, as the matrix


def _version_key(version: str) -> tuple:
    try:
        return (0, Version(version.split("+")[0]))
    except InvalidVersion:
        return (1, version)


def builds(results: dict) -> dict[str, list[dict]]:
    """Adapter -> its builds oldest first (``adapter`` is the qualified name); adapters in >= 2 builds only."""
    found: dict[str, list[dict]] = defaultdict(list)
    for name, env in results["environment"].get("adapters", {}).items():
        base, at, _ = name.partition("@")
        if at:
            found[base].append({"adapter": name, "version": env.get("version", ""), "device": env.get("device", ""),
                                "flags": env.get("flags", {}), "environment": env})
    out = {}
    for base, items in sorted(found.items()):
        if len(items) < 2:
            continue
        items.sort(key=lambda b: (_version_key(b["version"]), b["device"]))
        several_devices = len({b["device"] for b in items}) > 1
        # what else differs between the builds (companion packages such as optax, flags): shown with each
        differing = sorted(k for k in set().union(*(b["flags"] for b in items))
                           if len({b["flags"].get(k) for b in items}) > 1)
        for b in items:
            b["label"] = b["version"] + (f" on {b['device']}" if several_devices else "")
            b["differs"] = ", ".join(f"{k} {b['flags'].get(k, '-')}" for k in differing)
        out[base] = items
    return out


def _case_inputs(results: dict) -> dict:
    """Case id -> an object with the stored first input (for ``check_facts``; empty when not stored)."""
    out = {}
    for c in results.get("cases", []):
        first = c.get("first")
        second = c.get("second")
        out[c["id"]] = SimpleNamespace(  # what check_facts reads of a case; params are not stored in full
            id=c["id"], loss=c.get("loss", ""), params={},
            first=np.asarray(first if first is not None else [], dtype=np.float64),
            second=None if second is None else np.asarray(second))
    return out


def _facts(check: dict, inputs: dict) -> frozenset[str]:
    """``check_facts`` of a stored check: its numbers decoded from JSON ('nan' strings back to floats)."""
    record = {**check, **{k: as_float(check.get(k)) for k in ("truth", "got", "ratio")}}
    empty = SimpleNamespace(id=check["case"], loss=check.get("loss", ""), params={}, first=np.zeros(0), second=None)
    return check_facts(record, inputs.get(check["case"], empty))


def _known_row(entry: dict, items: list[dict], by_build: dict[str, list[dict]], inputs: dict) -> dict:
    known = Known.from_description(entry)
    anywhere = dataclasses.replace(known, versions="")  # measure every build, whatever the registered range
    scope = dataclasses.replace(anywhere, when=())  # the checks the entry talks about, whatever their outcome
    per, reproduces, contradictions = [], [], []
    for b in items:
        in_scope = [c for c in by_build.get(b["adapter"], [])
                    if scope.matches(known.adapter, c["impl"], c["quantity"], c["dtype"], c["case"], "0")]
        hits = [c for c in in_scope if c["verdict"] in DEVIATES and anywhere.matches(
            known.adapter, c["impl"], c["quantity"], c["dtype"], c["case"], "0", _facts(c, inputs))]
        status = "reproduces" if hits else ("does not reproduce" if in_scope else "not run")
        registered = known.covers(b["environment"])  # a shared library's entry reads that library's version
        if hits:
            reproduces.append(b["label"])
        if hits and not registered:
            contradictions.append(f"reproduces on {b['label']}, outside its registered range {known.versions!r}")
        elif status == "does not reproduce" and registered:
            contradictions.append(f"registered for {b['label']} ({known.versions!r}) but does not reproduce there")
        per.append({"status": status, "registered": registered, "checks": len(hits), "in_scope": len(in_scope)})
    return {"id": known.id, "impl": known.impl, "link": known.link, "versions": known.versions, "per": per,
            "reproduces": reproduces, "contradictions": contradictions}


def _cell(checks: list[dict]) -> dict | None:
    if not checks:
        return None
    counts = Counter(c["verdict"] for c in checks)
    worst = min(counts, key=ORDER.index)
    ratios = [r for r in (as_float(c.get("ratio")) for c in checks) if r is not None and not math.isnan(r)]
    return {"worst": worst, "count": counts[worst], "n": len(checks), "ratio": max(ratios) if ratios else None}


def _drift(ratios: list[float | None]) -> float:
    finite = [r for r in ratios if r is not None and math.isfinite(r)]
    if len(finite) < 2 or max(finite) <= 0.01:  # tiny ratios drift meaninglessly
        return 1.0
    return max(finite) / max(min(finite), 1e-300)


def _series(results: dict, adapter: str, items: list[dict], inputs: dict) -> dict:
    names = [b["adapter"] for b in items]
    by_build: dict[str, list[dict]] = defaultdict(list)
    for c in results["checks"]:
        if c["adapter"] in names:
            by_build[c["adapter"]].append(c)
    cells: dict[tuple, list[list[dict]]] = defaultdict(lambda: [[] for _ in names])
    checks: dict[tuple, list[dict | None]] = defaultdict(lambda: [None] * len(names))
    for i, name in enumerate(names):
        for c in by_build[name]:
            cells[(c["impl"], c["dtype"], c["quantity"])][i].append(c)
            checks[(c["impl"], c["dtype"], c["case"], c["quantity"])][i] = c
    cell_rows = []
    for (impl, dtype, quantity), per in sorted(cells.items()):
        views = [_cell(p) for p in per]
        shown = {(v["worst"], v["count"], v["n"]) if v else None for v in views}
        cell_rows.append({"impl": impl, "dtype": dtype, "quantity": quantity, "per": views, "changed": len(shown) > 1})
    changes = []
    for (impl, dtype, case, quantity), per in checks.items():
        verdicts = {c["verdict"] if c else None for c in per}
        drift = _drift([as_float(c.get("ratio")) if c else None for c in per])
        if len(verdicts) > 1 or drift > DRIFT:
            changes.append({"impl": impl, "dtype": dtype, "case": case, "quantity": quantity, "drift": drift,
                            "verdict_changed": len(verdicts) > 1,
                            "per": [{"verdict": c["verdict"], "ratio": c.get("ratio")} if c else None for c in per]})
    changes.sort(key=lambda r: (not r["verdict_changed"], -r["drift"], r["impl"], r["dtype"], r["case"]))
    known = [_known_row(k, items, by_build, inputs) for k in results.get("known", []) if k["adapter"] == adapter]
    return {"adapter": adapter, "builds": items, "cells": cell_rows,
            "changed_cells": sum(r["changed"] for r in cell_rows), "changes": changes[:MAX_ROWS],
            "hidden_changes": max(0, len(changes) - MAX_ROWS), "known": known}


def trend_view(results: dict) -> dict | None:
    """The report's trend section: one series per adapter that ran in several builds; None when none did."""
    found = builds(results)
    if not found:
        return None
    inputs = _case_inputs(results)
    return {"series": [_series(results, a, items, inputs) for a, items in found.items()], "drift": DRIFT}


def contradictions(results: dict) -> list[str]:
    """One line per known deviation whose measured versions contradict its registered range."""
    view = trend_view(results)
    return [f"{s['adapter']} {k['id']}: {line}" for s in (view["series"] if view else [])
            for k in s["known"] for line in k["contradictions"]]
