"""Cross-framework agreement: who is wrong when a check fails, the framework or the reference?

For each (case, dtype, quantity) the checks of all frameworks are compared with each other; a framework
in each of its execution modes counts as its own party (``torch@compile``, ``keras_jax@jit``), so a
compiled mode that alone deviates, or a Keras backend that alone fails, is a single-framework finding:

- ``suspect_reference``: two or more frameworks fail, their finite results agree with each other
  within their bounds, and no framework passes: the truth itself is suspect (re-check it with the
  oracle; frameworks sharing one approximation look the same). Modes of one adapter are not
  independent witnesses against the truth, so they need a second adapter to corroborate them;
- ``shared_deviation``: two or more frameworks fail and agree with each other, but another framework
  passes (which corroborates the truth), or they agree on NaN where the truth is not NaN (or on
  inf where it is finite), which no correct evaluation returns: they share a deviation;
- ``single_framework``: exactly one framework fails while the others pass, or one adapter fails in
  several modes and agrees with itself: the finding is its own.
"""

from __future__ import annotations

import math
from collections import defaultdict

_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_AGREEING_VERDICTS = ("pass", "variant")
KINDS = ("suspect_reference", "shared_deviation", "single_framework")  # most to least alarming


def as_float(x: object) -> float | None:
    """A results.json number as a float ('nan'/'inf'/'-inf' strings decoded, None kept)."""
    if x is None:
        return None
    if isinstance(x, str):
        try:
            return _NONFINITE[x]
        except KeyError:
            raise ValueError(f"number: expected a float or 'nan'/'inf'/'-inf', got {x!r}") from None
    return float(x)


def analyze(results: dict) -> list[dict]:
    """Findings from comparing frameworks with each other on the same (case, dtype, quantity)."""
    if not isinstance(results, dict) or not isinstance(results.get("checks"), list):
        raise TypeError("results: expected a results.json dict with a 'checks' list")
    groups: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for check in results["checks"]:
        groups[(check["case"], check["dtype"], check["quantity"])].append(check)

    findings = []
    for (case, dtype, quantity), checks in groups.items():
        failing = [c for c in checks if c["verdict"] == "fail"]
        failing_adapters = sorted({party(c) for c in failing})
        passing_adapters = sorted(
            {party(c) for c in checks if c["verdict"] in _AGREEING_VERDICTS} - set(failing_adapters)
        )
        base = {"case": case, "dtype": dtype, "quantity": quantity, "checks": [c["id"] for c in failing]}
        if len(failing_adapters) == 1 and passing_adapters:
            findings.append({
                **base, "kind": "single_framework", "adapters": failing_adapters,
                "message": f"only {failing_adapters[0]} fails; {', '.join(passing_adapters)} pass",
            })
        elif len(failing_adapters) >= 2 and _agree(failing):
            names = ", ".join(failing_adapters)
            if passing_adapters:
                kind, message = "shared_deviation", (
                    f"{names} agree with each other but not with the truth, which "
                    f"{', '.join(passing_adapters)} reproduce")
            elif any(_implausible_nonfinite(c) for c in failing):
                kind, message = "shared_deviation", (
                    f"{names} agree on NaN (or inf) where the truth is not: a shared "
                    "formula that overflows or cancels, not a reference problem")
            elif len({c["adapter"] for c in failing}) == 1:
                kind, message = "single_framework", (
                    f"only {failing[0]['adapter']} fails, alike in its modes ({names}); no other "
                    "framework checks this")
            else:
                kind, message = "suspect_reference", (
                    f"{names} fail and agree with each other within their bounds: re-check the "
                    "reference with the oracle (or they share one approximation)")
            findings.append({**base, "kind": kind, "adapters": failing_adapters, "message": message})
    return sorted(findings, key=lambda f: (KINDS.index(f["kind"]), f["case"], f["dtype"], f["quantity"]))


def party(check: dict) -> str:
    """Who produced a check: the adapter, with its execution mode when the check records one."""
    return f"{check['adapter']}@{check['mode']}" if check.get("mode") else check["adapter"]


def _agree(checks: list[dict]) -> bool:
    """Whether every pair of results agrees within the sum of the two bounds (elementwise if stored)."""
    first = checks[0]
    return all(_pair_agrees(first, other) for other in checks[1:])


def _pair_agrees(a: dict, b: dict) -> bool:
    tolerance = (as_float(a.get("bound")) or 0.0) + (as_float(b.get("bound")) or 0.0)
    if a.get("got_values") is not None and b.get("got_values") is not None:
        xs, ys = a["got_values"], b["got_values"]
        return len(xs) == len(ys) and all(_close(x, y, tolerance) for x, y in zip(xs, ys, strict=True))
    # without stored values only the worst elements can be compared, and only at the same index
    if a.get("index") is None or a.get("index") != b.get("index"):
        return False
    return _close(a.get("got"), b.get("got"), tolerance)


def _implausible_nonfinite(check: dict) -> bool:
    """Whether the result holds NaN where the truth is not NaN, or inf where the truth is finite."""
    pairs = list(zip(check.get("got_values") or [], check.get("truth_values") or [], strict=False))
    pairs = pairs or [(check.get("got"), check.get("truth"))]
    for got, truth in pairs:
        g, t = as_float(got), as_float(truth)
        if g is None or t is None:
            continue
        if (math.isnan(g) and not math.isnan(t)) or (math.isinf(g) and math.isfinite(t)):
            return True
    return False


def _close(x: object, y: object, tolerance: float) -> bool:
    fx, fy = as_float(x), as_float(y)
    if fx is None or fy is None:
        return False
    if math.isnan(fx) or math.isnan(fy):
        return math.isnan(fx) and math.isnan(fy)
    if math.isinf(fx) or math.isinf(fy):
        return fx == fy
    return abs(fx - fy) <= tolerance
