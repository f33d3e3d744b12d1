"""What a reader sees first: the lead of every matrix cell, a summary card per framework, and the
capability grid of every implementation. View-model functions only (plain dicts), rendered by
``templates/report.html.j2``.

A cell leads with its worst error/bound over *finite* inputs (a number, never ``inf``) and the worst
verdict there; what the implementation does with non-finite inputs (±inf, NaN) and with invalid inputs
is shown beside it as separate marks, so one IEEE convention or one NaN edge case never paints over
how accurate an implementation is on ordinary numbers.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict

from lossconf.reference.catalog import CATALOG
from lossconf.reference.dtypes import DTYPES
from lossconf.reports.agreement import as_float

WORST_FIRST = ("fail", "error", "known", "variant", "pass", "unsupported", "skipped")
PARAMS = ("label_smoothing", "weight", "ignore_index", "axis", "pos_weight", "log_input")


def _worst(verdicts) -> str | None:
    present = set(verdicts)
    return next((v for v in WORST_FIRST if v in present), None)


def input_group(case: dict | None) -> str:
    """'finite', 'nonfinite' or 'invalid': which part of a cell a check of ``case`` belongs to."""
    if case is None:
        return "finite"
    if case.get("kind") == "invalid":
        return "invalid"
    return "finite" if case.get("finite_input", True) else "nonfinite"


def row_anchor(adapter: str, impl: str) -> str:
    """A fragment id for an implementation's matrix row."""
    return "row-" + re.sub(r"[^A-Za-z0-9_-]+", "-", f"{adapter}-{impl}").strip("-")


def lead(checks: list[dict], cases: dict) -> dict:
    """The lead of one matrix cell: worst finite-input verdict and error/bound, and the marks."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for c in checks:
        groups[input_group(cases.get(c["case"]))].append(c)
    finite = groups["finite"]
    ratios = [r for r in (as_float(c.get("ratio")) for c in finite) if r is not None and math.isfinite(r)]
    mismatched = [c for c in finite if (r := as_float(c.get("ratio"))) is not None and math.isinf(r)]
    marks = []
    if mismatched:  # e.g. an overflow to inf where the truth is finite: no ratio, so a mark
        marks.append({"label": "≠", "verdict": _worst(c["verdict"] for c in mismatched),
                      "title": f"finite inputs, non-finite mismatch: {len(mismatched)} checks"})
    for group, label, what in (("nonfinite", "±∞", "±inf/NaN inputs"), ("invalid", "!", "invalid inputs")):
        if any(c["verdict"] not in ("unsupported", "skipped") for c in groups[group]):
            counts = Counter(c["verdict"] for c in groups[group])
            variants = Counter(c.get("variant") for c in groups[group] if c["verdict"] == "variant")
            detail = ", ".join(f"{v} {n}" for v, n in counts.items())
            if variants:
                detail += " (" + ", ".join(f"{v} {n}" for v, n in variants.items() if v) + ")"
            marks.append({"label": label, "verdict": _worst(counts), "title": f"{what}: {detail}"})
    return {
        "lead_worst": _worst(c["verdict"] for c in finite),
        "lead_n": len(finite),
        "lead_count": sum(1 for c in finite if c["verdict"] == _worst(x["verdict"] for x in finite)),
        "lead_ratio": max(ratios) if ratios else None,
        "marks": marks,
    }


def framework_cards(results: dict, cases: dict) -> list[dict]:
    """One card per framework: where it is accurate, where it follows a convention, where it deviates."""
    per_impl: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for c in results["checks"]:
        per_impl[(c["adapter"], c["impl"])].append(c)
    for i in results.get("implementations", []):
        per_impl.setdefault((i["adapter"], i["name"]), [])
    known_links = {k["id"]: k.get("link", "") for k in results.get("known", [])}
    cards: dict[str, dict] = {}
    for (adapter, name), checks in sorted(per_impl.items()):
        card = cards.setdefault(adapter, {
            "adapter": adapter, "impls": 0, "accurate": [], "convention": [], "deviates": [], "untested": [],
            "worst_ratio": None, "variants": Counter(), "known": Counter(), "fails": 0, "errors": 0,
            "unsupported": 0, "nonfinite": Counter(), "invalid": Counter(), "checks": 0,
        })
        card["impls"] += 1
        card["checks"] += len(checks)
        finite = [c for c in checks if input_group(cases.get(c["case"])) == "finite"]
        for c in checks:
            group = input_group(cases.get(c["case"]))
            if group != "finite":
                card[group][c["verdict"]] += 1
            if c["verdict"] == "variant" and c.get("variant"):
                card["variants"][c["variant"]] += 1
            if c["verdict"] == "known" and c.get("known"):
                card["known"][c["known"]] += 1
            card["fails"] += c["verdict"] == "fail"
            card["errors"] += c["verdict"] == "error"
            card["unsupported"] += c["verdict"] == "unsupported"
        conforming = [c for c in finite if c["verdict"] in ("pass", "variant")]  # deviations are listed apart
        ratios = [r for r in (as_float(c.get("ratio")) for c in conforming) if r is not None and math.isfinite(r)]
        if ratios:
            card["worst_ratio"] = max(card["worst_ratio"] or 0.0, max(ratios))
        worst = _worst(c["verdict"] for c in finite if c["verdict"] not in ("unsupported", "skipped"))
        entry = {"name": name, "anchor": row_anchor(adapter, name)}
        if worst is None:
            card["untested"].append(entry)
        elif worst == "pass":
            card["accurate"].append(entry)
        elif worst == "variant":
            used = sorted({c["variant"] for c in finite if c["verdict"] == "variant" and c.get("variant")})
            card["convention"].append({**entry, "variants": used})
        else:
            card["deviates"].append({**entry, "verdict": worst})
    for card in cards.values():
        card["variants"] = sorted(card["variants"].items(), key=lambda kv: -kv[1])
        card["known"] = [{"id": k, "n": n, "link": known_links.get(k, "")}
                         for k, n in sorted(card["known"].items(), key=lambda kv: -kv[1])]
        card["nonfinite"] = dict(card["nonfinite"])
        card["invalid"] = dict(card["invalid"])
        card["verdict"] = ("fail" if card["fails"] else "error" if card["errors"] else
                           "known" if card["deviates"] else "variant" if card["convention"] else "pass")
    return list(cards.values())


def capability_grid(results: dict) -> list[dict]:
    """Per framework, per implementation: reductions, parameters, gradient and dtypes its API offers,
    and how many combinations were therefore not applicable (not checks)."""
    na = results.get("not_applicable", {}).get("by_impl", {})
    grid: dict[str, list[dict]] = defaultdict(list)
    for i in sorted(results.get("implementations", []), key=lambda i: (i["adapter"], i["loss"], i["name"])):
        loss = CATALOG.get(i["loss"])
        reductions = loss.reductions if loss else ("none", "mean", "sum")
        params = loss.param_names if loss else ()
        reasons = na.get(f"{i['adapter']}:{i['name']}", {})
        grid[i["adapter"]].append({
            "name": i["name"], "loss": i["loss"], "api": i["api"], "anchor": row_anchor(i["adapter"], i["name"]),
            "reductions": [("yes" if r in i["reductions"] else "no") if r in reductions else "absent"
                           for r in ("none", "mean", "sum")],
            "params": [("yes" if p in i["params"] else "no") if p in params else "absent" for p in PARAMS],
            "grad": "yes" if i.get("grad", True) else "no",
            "dtypes": ["yes" if d in i["dtypes"] else "unsupported" for d in DTYPES],
            "not_applicable": sum(reasons.values()),
            "reasons": sorted(reasons.items(), key=lambda kv: -kv[1]),
        })
    return [{"adapter": a, "rows": rows} for a, rows in grid.items()]


def invalid_view(results: dict, cases: dict) -> list[dict]:
    """Per framework: what each implementation does with each invalid input (raises, NaN, a number)."""
    from lossconf.invalid import behaviour

    checks = [c for c in results["checks"] if cases.get(c["case"], {}).get("kind") == "invalid"]
    out = []
    for adapter in sorted({c["adapter"] for c in checks}):
        mine = [c for c in checks if c["adapter"] == adapter]
        impls = sorted({(c["loss"], c["impl"]) for c in mine})  # each row lists the implementations of its loss
        by_key = {(c["case"], c["impl"], c["quantity"]): c for c in mine}
        rows = []
        for case_id in sorted({c["case"] for c in mine}, key=lambda i: (cases[i]["loss"], i)):
            cells = []
            for loss, impl in impls:
                value = by_key.get((case_id, impl, "value"))
                if loss != cases[case_id]["loss"] or value is None:
                    continue
                grads = [c for q in CATALOG[loss].quantities[1:] if (c := by_key.get((case_id, impl, q)))]
                shown = [value, *grads]
                worst = _worst(c["verdict"] for c in shown)
                what = behaviour(value) if value["verdict"] != "unsupported" else "unsupported"
                for grad in grads:  # every gradient that behaves otherwise than the value
                    if grad["verdict"] not in ("unsupported", value["verdict"]):
                        what += f" ({grad['quantity']}: {behaviour(grad)})"
                known = next((c["known"] for c in shown if c.get("known")), None)
                cells.append({"impl": impl, "verdict": worst, "what": what, "known": known,
                              "title": " | ".join(f"{c['quantity']}: {c['message']}" for c in shown)})
            rows.append({"case": case_id, "loss": cases[case_id]["loss"], "what": cases[case_id].get("note", ""),
                         "cells": cells})
        counts = Counter(c["verdict"] for c in mine)
        out.append({"adapter": adapter, "rows": rows, "counts": dict(counts)})
    return out
