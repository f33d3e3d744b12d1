"""The HTML report: results.json -> one self-contained page (inline CSS, JS and SVG, no network).

``render_html`` turns the results into a view model (plain dicts and lists, built here) and renders
``templates/report.html.j2`` with Jinja2 autoescaping on, so every string from results.json is
escaped. The SVG plots are built here from escaped parts.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from lossconf.reference.catalog import CATALOG
from lossconf.reference.dtypes import DTYPES, UNIT_ROUNDOFF
from lossconf.reports.agreement import analyze, as_float
from lossconf.reports.overview import capability_grid, framework_cards, invalid_view, lead, row_anchor
from lossconf.reports.repro import snippet
from lossconf.reports.trend import trend_view
from lossconf.verdicts import DETAILED

VERDICTS = ("pass", "variant", "fail", "known", "error", "unsupported", "skipped")
WORST_FIRST = ("fail", "error", "known", "variant", "pass", "unsupported", "skipped")
QUANTITIES = ("value", "grad")
MAX_DETAILED_PER_CELL = 8
MAX_LISTED_IDS = 40
FULL_INPUT_ELEMENTS = 32  # inputs up to this size are printed in full, larger ones summarised
COLORS = {
    "pass": "#2e7d32", "variant": "#1565c0", "fail": "#c62828", "known": "#ef8f00",
    "error": "#6a1b9a", "unsupported": "#757575", "skipped": "#b0b0b0",
}
ADAPTER_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")

_TEMPLATES = Path(__file__).with_name("templates")


def render_html(results: dict, path: str | Path) -> Path:
    """Write the self-contained HTML report for ``results`` to ``path``; returns the path."""
    if not isinstance(results, dict) or not isinstance(results.get("checks"), list):
        raise TypeError("results: expected a results.json dict with a 'checks' list")
    path = Path(path)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    env.filters["full"] = _full
    env.filters["link"] = _link
    html = env.get_template("report.html.j2").render(view=_view(results), r=results, colors=COLORS)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


# -- formatting filters ---------------------------------------------------------------------------
def _num(x: object, digits: int = 4) -> str:
    """Short number for tables: 4 significant digits, '—' for missing."""
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    if isinstance(x, bool) or isinstance(x, int):
        return str(x)
    f = float(x)
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    return f"{f:.{digits}g}"


def _full(x: object) -> str:
    """Full-precision number (round-trips), for truths and results."""
    if x is None or isinstance(x, str):
        return "—" if x is None else x
    return repr(float(x)) if isinstance(x, float) else str(x)


def _link(text: str) -> Markup:
    """A citation with its leading http(s) URL made a link; anything else stays plain escaped text."""
    text = str(text)
    head, _, tail = text.partition(" ")
    if head.startswith(("https://", "http://")):
        return Markup('<a href="{0}" rel="noreferrer">{0}</a>').format(head) + (" " + tail if tail else "")
    return Markup(escape(text))


# -- view model -----------------------------------------------------------------------------------
def _rank(verdict: str) -> int:
    return WORST_FIRST.index(verdict)


def _ratio_key(check: dict) -> float:
    r = as_float(check.get("ratio"))
    return -1.0 if r is None or math.isnan(r) else r


def _view(results: dict) -> dict:
    checks = results["checks"]
    cases = {c["id"]: c for c in results.get("cases", [])}
    impls = {(i["adapter"], i["name"]): i for i in results.get("implementations", [])}
    findings = analyze(results)
    finding_of = {cid: f for f in findings for cid in f["checks"]}

    dtypes = [d for d in DTYPES if d in set(results.get("config", {}).get("dtypes", [])) | {c["dtype"] for c in checks}]
    # further gradients (linear_cross_entropy's grad_linear_weight) get columns of their own
    quantities = [*QUANTITIES, *sorted({c["quantity"] for c in checks} - set(QUANTITIES))]
    columns = [(d, q) for d in dtypes for q in quantities]
    headers = [quantity_header(q) for q in quantities]
    adapters = sorted({c["adapter"] for c in checks} | {a for a, _ in impls})
    losses = [loss for loss in CATALOG if loss in {c["loss"] for c in checks} | {i["loss"] for i in impls.values()}]

    by_cell: dict[tuple, list[dict]] = defaultdict(list)
    row_keys = {(i["loss"], a, n) for (a, n), i in impls.items()}
    mode_of = _default_modes(results)
    row_keys = {(loss, a, n, mode_of.get(a, "")) for loss, a, n in row_keys}
    for c in checks:
        mode = c.get("mode", "")
        by_cell[(c["adapter"], c["impl"], mode, c["dtype"], c["quantity"])].append(c)
        row_keys.add((c["loss"], c["adapter"], c["impl"], mode))

    groups, details, cell_number = [], [], 0
    for loss in losses:
        rows = []
        for _, adapter, name, mode in sorted(k for k in row_keys if k[0] == loss):
            cells, row_verdicts = [], set()
            for dtype, quantity in columns:
                cell_checks = by_cell.get((adapter, name, mode, dtype, quantity), [])
                cell = {**_cell(cell_checks), **lead(cell_checks, cases)}
                cell["applicable"] = loss not in CATALOG or quantity in CATALOG[loss].quantities
                if cell["detail"]:
                    cell_number += 1
                    cell["anchor"] = f"cell-{cell_number}"
                    details.append(_cell_details(results, cell, cell_checks, adapter, name, loss, dtype,
                                                 quantity, cases, impls, finding_of))
                row_verdicts |= set(cell["counts"])
                cells.append(cell)
            impl = impls.get((adapter, name), {})
            default_mode = mode == mode_of.get(adapter, mode)
            rows.append({"adapter": adapter, "name": name, "impl": impl, "cells": cells, "mode": mode,
                         "default_mode": default_mode,
                         "anchor": row_anchor(adapter, name if default_mode else f"{name}@{mode}"),
                         "verdicts": " ".join(sorted(row_verdicts))})
        spec = CATALOG.get(loss)
        shown = [quantity_header(q, spec.inputs[0].name) for q in spec.quantities] if spec else []
        listed = " · ".join(f"{h['label']} ({h['title']})" for h in shown) if len(shown) > 2 else ""
        groups.append({"loss": loss, "rows": rows, "quantities": listed})

    by_verdict = Counter(c["verdict"] for c in checks)
    by_adapter = {a: Counter(c["verdict"] for c in checks if c["adapter"] == a) for a in adapters}
    summary = results.get("summary", {})
    recorded = {"total": summary.get("total"), "by_verdict": summary.get("by_verdict", {})}
    honest = recorded["total"] == len(checks) and all(
        recorded["by_verdict"].get(v, 0) == by_verdict.get(v, 0) for v in VERDICTS
    )
    return {
        "verdicts": VERDICTS,
        "columns": columns,
        "headers": headers,  # one per quantity, repeated under every dtype
        "dtypes": dtypes,
        "adapters": adapters,
        "losses": losses,
        "groups": groups,
        "details": details,
        "total": len(checks),
        "planned": summary.get("planned"),
        "by_verdict": by_verdict,
        "by_adapter": by_adapter,
        "summary_mismatch": None if honest else recorded,
        "findings": findings,
        "cards": framework_cards(results, cases),
        "capabilities": capability_grid(results),
        "invalid": invalid_view(results, cases),
        "not_applicable": results.get("not_applicable", {}).get("total"),
        "headroom_svg": _headroom_svg(checks, adapters, dtypes),
        "magnitude_svg": _magnitude_svg(checks, cases, adapters),
        "variant_use": Counter(c["variant"] for c in checks if c["verdict"] == "variant"),
        "known_use": Counter(c["known"] for c in checks if c.get("known")),
        "u": UNIT_ROUNDOFF,
        "trend": trend_view(results),
        "modes": sorted({k[3] for k in row_keys if k[3]}),
        "mode_disagreements": mode_disagreements(results),
    }


def _default_modes(results: dict) -> dict[str, str]:
    """Each adapter's default mode (the first it declares), from the environment."""
    envs = results.get("environment", {}).get("adapters", {})
    return {a: (env.get("modes") or [""])[0] for a, env in envs.items()}


def mode_disagreements(results: dict) -> list[dict]:
    """Checks whose modes disagree: the same (adapter, impl, case, dtype, quantity) passing in one mode
    and failing or erring in another, each with a reproduction snippet per mode."""
    from lossconf.reports.repro import snippet

    groups: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for c in results["checks"]:
        if c.get("mode"):
            groups[(c["adapter"], c["impl"], c["case"], c["dtype"], c["quantity"])][c["mode"]] = c
    rows = []
    for (adapter, impl, case, dtype, quantity), by_mode in sorted(groups.items()):
        good = sorted(m for m, c in by_mode.items() if c["verdict"] in ("pass", "variant"))
        bad = sorted(m for m, c in by_mode.items() if c["verdict"] in ("fail", "error", "known"))
        if good and bad:
            rows.append({
                "adapter": adapter, "impl": impl, "case": case, "dtype": dtype, "quantity": quantity,
                "conforming": good, "deviating": bad,
                "checks": [{"mode": m, "id": c["id"], "verdict": c["verdict"], "known": c.get("known"),
                            "ratio": c.get("ratio"), "message": c.get("message", ""),
                            "repro": snippet(results, c)} for m, c in sorted(by_mode.items())],
            })
    return rows


def _cell(checks: list[dict]) -> dict:
    counts = Counter(c["verdict"] for c in checks)
    worst = min(counts, key=_rank) if counts else None
    ratios = [r for r in (as_float(c.get("ratio")) for c in checks) if r is not None and not math.isnan(r)]
    return {
        "n": len(checks),
        "counts": dict(sorted(counts.items(), key=lambda kv: _rank(kv[0]))),
        "worst": worst,
        "worst_ratio": max(ratios) if ratios else None,
        "detail": any(v not in ("pass",) for v in counts),
        "anchor": None,
    }


def quantity_header(quantity: str, first: str = "first input") -> dict:
    """A matrix column's short label and its meaning: "grad_linear_weight" reads "grad W", d loss / d linear_weight
    (``first``: the name of the loss's first input, what "grad" differentiates)."""
    if quantity == "value":
        return {"label": "value", "title": "the loss value", "quantity": quantity}
    if quantity == "grad":
        return {"label": "grad", "title": f"d loss / d {first}", "quantity": quantity}
    param = quantity.removeprefix("grad_")
    short = {"linear_weight": "W", "linear_bias": "b"}.get(param, param)
    return {"label": f"grad {short}", "title": f"d loss / d {param}", "quantity": quantity}


def _cell_details(results, cell, checks, adapter, name, loss, dtype, quantity, cases, impls, finding_of) -> dict:
    non_pass = sorted((c for c in checks if c["verdict"] != "pass"),
                      key=lambda c: (_rank(c["verdict"]), -_ratio_key(c)))
    detailed = [c for c in non_pass if c["verdict"] in DETAILED]
    shown = detailed[:MAX_DETAILED_PER_CELL]
    hidden = detailed[MAX_DETAILED_PER_CELL:]
    # unsupported/skipped checks carry no numbers: group them by their reason
    reasons = Counter((c["verdict"], c.get("message", "")) for c in non_pass if c["verdict"] not in DETAILED)
    return {
        "anchor": cell["anchor"], "adapter": adapter, "impl": name, "loss": loss, "dtype": dtype,
        "quantity": quantity, "counts": cell["counts"], "worst": cell["worst"],
        "verdicts": " ".join(cell["counts"]),
        "api": impls.get((adapter, name), {}).get("api", ""),
        "checks": [_check_view(results, c, cases.get(c["case"]), finding_of.get(c["id"])) for c in shown],
        "hidden_count": len(hidden),
        "hidden_ids": [c["id"] for c in hidden[:MAX_LISTED_IDS]],
        "reasons": [{"verdict": v, "message": m, "count": n} for (v, m), n in reasons.most_common()],
    }


def _check_view(results: dict, check: dict, case: dict | None, finding: dict | None) -> dict:
    return {
        "c": check,
        "case": case,
        "inputs": _inputs_view(case),
        "bound": _bound_view(check),
        "finding": finding,
        "elements": _values_view(check),
        "snippet": snippet(results, check),
    }


def _values_view(check: dict) -> list[tuple[int, object, object]] | None:
    got, truth = check.get("got_values"), check.get("truth_values")
    if got is None or truth is None or len(got) != len(truth):
        return None
    return list(zip(range(len(got)), truth, got, strict=True))


def _bound_view(check: dict) -> str | None:
    """The bound formula with its numbers: 0.5 ulp(truth) + kappa * u * S."""
    kappa, scale, bnd = (as_float(check.get(k)) for k in ("kappa", "scale", "bound"))
    dtype = check["dtype"]
    if None in (kappa, scale, bnd) or dtype not in UNIT_ROUNDOFF:
        return None
    u = UNIT_ROUNDOFF[dtype]
    half_ulp = bnd - kappa * u * scale  # the record holds the sum; the model term is recomputed exactly
    return (f"bound = 0.5 ulp(truth) + κ·u·S = {_num(half_ulp)} + {_num(kappa)} × 2^{int(math.log2(u))}"
            f" × {_num(scale)} = {_num(bnd)}")


def _flatten(values: object) -> list:
    if isinstance(values, list):
        return [x for v in values for x in _flatten(v)]
    return [values]


def _array_view(values: object, shape: list | None, magnitude: object = None) -> dict:
    if values is None:
        return {"shape": shape, "stored": False, "magnitude": magnitude}
    flat = [as_float(v) for v in _flatten(values)]
    finite = [v for v in flat if math.isfinite(v)]
    view = {"shape": shape, "stored": True, "size": len(flat),
            "min": min(finite) if finite else None, "max": max(finite) if finite else None,
            "nonfinite": len(flat) - len(finite),
            "text": _nested_text(values) if len(flat) <= FULL_INPUT_ELEMENTS else None}
    return view


def _nested_text(values: object) -> str:
    if isinstance(values, list):
        return "[" + ", ".join(_nested_text(v) for v in values) + "]"
    return _full(values)


def _inputs_view(case: dict | None) -> dict | None:
    if case is None:
        return None
    second = None
    if case.get("second_shape") is not None:
        second = _array_view(case.get("second"), case["second_shape"])
    return {"first": _array_view(case.get("first"), case.get("shape"), case.get("magnitude")), "second": second}


# -- plots (inline SVG) ---------------------------------------------------------------------------
_LOG_MIN, _LOG_MAX = -4, 2  # ratio axis, log10; exact results and infinities sit in end bins


def _log_ratio(check: dict) -> float | None:
    r = as_float(check.get("ratio"))
    if r is None or math.isnan(r) or check["verdict"] not in ("pass", "variant", "fail", "known"):
        return None
    if r <= 0:
        return _LOG_MIN - 0.5
    if math.isinf(r):
        return _LOG_MAX + 0.5
    return min(max(math.log10(r), _LOG_MIN), _LOG_MAX + 0.49)


def _headroom_svg(checks: list[dict], adapters: list[str], dtypes: list[str]) -> Markup | None:
    """Histogram per (framework, dtype) of log10(error/bound): the headroom before a failure."""
    bins_per_decade = 4
    lo, hi = _LOG_MIN - 1, _LOG_MAX + 1
    n_bins = (hi - lo) * bins_per_decade
    rows = []
    for adapter in adapters:
        for dtype in dtypes:
            logs = [x for c in checks if c["adapter"] == adapter and c["dtype"] == dtype
                    if (x := _log_ratio(c)) is not None]
            if logs:
                counts = Counter(min(int((x - lo) * bins_per_decade), n_bins - 1) for x in logs)
                rows.append((f"{adapter} {dtype}", counts, len(logs)))
    if not rows:
        return None
    left, width, row_h, top = 150, 540, 26, 24
    bin_w = width / n_bins
    out = [f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {left + width + 60} '
           f'{top + row_h * len(rows) + 40}" role="img" aria-label="error/bound distribution">']
    x_one = left + (0 - lo) * bins_per_decade * bin_w
    for i, (label, counts, total) in enumerate(rows):
        y = top + i * row_h
        peak = max(counts.values())
        out.append(f'<text x="{left - 6}" y="{y + row_h * 0.65:.1f}" text-anchor="end">{escape(label)}</text>')
        out.append(f'<line x1="{left}" x2="{left + width}" y1="{y + row_h - 2}" y2="{y + row_h - 2}" '
                   'stroke="#ddd"/>')
        for b, n in sorted(counts.items()):
            h = max(2.0, (row_h - 4) * n / peak)
            color = COLORS["fail"] if lo + b / bins_per_decade >= 0 else COLORS["pass"]
            out.append(f'<rect x="{left + b * bin_w:.1f}" y="{y + row_h - 2 - h:.1f}" width="{bin_w - 1:.1f}" '
                       f'height="{h:.1f}" fill="{color}"><title>{escape(label)}: {n} of {total}</title></rect>')
        out.append(f'<text x="{left + width + 6}" y="{y + row_h * 0.65:.1f}">{total}</text>')
    bottom = top + row_h * len(rows)
    out.append(f'<line x1="{x_one:.1f}" x2="{x_one:.1f}" y1="{top - 6}" y2="{bottom + 4}" stroke="#000" '
               'stroke-dasharray="4 3"/>')
    out.append(f'<text x="{x_one:.1f}" y="{top - 10}" text-anchor="middle">error = bound</text>')
    ticks = [(lo + 0.5, "exact")] + [(k, f"1e{k}") for k in range(_LOG_MIN, _LOG_MAX + 1)] + [(hi - 0.5, "inf")]
    for value, text in ticks:
        x = left + (value - lo) * bins_per_decade * bin_w
        out.append(f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle">{escape(text)}</text>')
    out.append(f'<text x="{left + width / 2}" y="{bottom + 34}" text-anchor="middle">error / bound (log scale; '
               'right of the dashed line fails)</text></svg>')
    return Markup("".join(out))


def _magnitude_svg(checks: list[dict], cases: dict, adapters: list[str]) -> Markup | None:
    """Scatter of error/bound against input magnitude for the edge cases with logits."""
    edge_logits = {cid for cid, c in cases.items()
                   if c.get("kind") == "edge" and c["loss"] in CATALOG
                   and CATALOG[c["loss"]].inputs[0].role == "logits"}
    points = []
    for c in checks:
        if c["case"] not in edge_logits:
            continue
        m, y = as_float(cases[c["case"]].get("magnitude")), _log_ratio(c)
        if m is None or not math.isfinite(m) or m <= 0 or y is None:
            continue
        points.append((math.log10(m), y, c))
    if not points:
        return None
    x_lo = math.floor(min(p[0] for p in points))
    x_hi = max(math.ceil(max(p[0] for p in points)), x_lo + 1)
    left, width, top, height = 60, 600, 20, 260
    y_lo, y_hi = _LOG_MIN - 1, _LOG_MAX + 1

    def sx(v: float) -> float:
        return left + (v - x_lo) / (x_hi - x_lo) * width

    def sy(v: float) -> float:
        return top + (y_hi - v) / (y_hi - y_lo) * height

    out = [f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {left + width + 130} '
           f'{top + height + 45}" role="img" aria-label="error/bound versus input magnitude">',
           f'<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="none" stroke="#999"/>',
           f'<line x1="{left}" x2="{left + width}" y1="{sy(0):.1f}" y2="{sy(0):.1f}" stroke="#000" '
           'stroke-dasharray="4 3"/>']
    y_ticks = [(_LOG_MIN - 0.5, "exact")] + [(k, f"1e{k}") for k in range(_LOG_MIN, _LOG_MAX + 1)]
    for value, text in y_ticks + [(_LOG_MAX + 0.5, "inf")]:
        out.append(f'<text x="{left - 4}" y="{sy(value) + 4:.1f}" text-anchor="end">{text}</text>')
    for k in range(x_lo, x_hi + 1):
        out.append(f'<text x="{sx(k):.1f}" y="{top + height + 16}" text-anchor="middle">1e{k}</text>')
    color = {a: ADAPTER_COLORS[i % len(ADAPTER_COLORS)] for i, a in enumerate(adapters)}
    for x, y, c in points:
        shape = "circle" if c["quantity"] == "value" else "rect"
        px, py = sx(x), sy(y)
        title = escape(f"{c['id']}: error/bound {_num(c.get('ratio'))}, |x| max {_num(10 ** x)}")
        if shape == "circle":
            out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{color[c["adapter"]]}" '
                       f'fill-opacity="0.7"><title>{title}</title></circle>')
        else:
            out.append(f'<rect x="{px - 3:.1f}" y="{py - 3:.1f}" width="6" height="6" fill="{color[c["adapter"]]}" '
                       f'fill-opacity="0.7"><title>{title}</title></rect>')
    for i, a in enumerate(a for a in adapters if any(p[2]["adapter"] == a for p in points)):
        out.append(f'<circle cx="{left + width + 16}" cy="{top + 10 + 18 * i}" r="5" fill="{color[a]}"/>'
                   f'<text x="{left + width + 26}" y="{top + 14 + 18 * i}">{escape(a)}</text>')
    out.append(f'<text x="{left + width + 10}" y="{top + height - 20}">● value ■ grad</text>')
    out.append(f'<text x="{left + width / 2}" y="{top + height + 36}" text-anchor="middle">max |finite input| '
               '(log scale); y: error / bound (log scale)</text></svg>')
    return Markup("".join(out))
