"""Capabilities: what an implementation's API offers at all.

A combination the API does not offer (a reduction or parameter it lacks, classes on another axis, a
gradient of a value-only API) is *not applicable*: it is not a check, never counted, and the report
shows it in the implementation's capability grid instead. What the framework should do and cannot here
(a dtype kernel missing on this device, a call that corrupts memory) stays an ``unsupported`` check.
The kind comes from ``Impl.unsupported_reason`` (``lossconf.adapters.base.Reason``).
"""

from __future__ import annotations

from lossconf.adapters.base import NOT_APPLICABLE


def not_applicable(why: str | None, impl: dict, quantity: str) -> str | None:
    """Why (case, dtype, quantity) is no check of ``impl`` (the API does not offer it), or None."""
    if quantity != "value" and not impl["grad"]:
        return f"{impl['api']} has no gradient (value-only API)"
    if why is not None and getattr(why, "kind", None) == NOT_APPLICABLE:
        return str(why)
    return None


def tally(store: dict, adapter: str, impl: str, reason: str) -> None:
    """Count one not-applicable combination under ``store["adapter:impl"][reason]``."""
    per_impl = store.setdefault(f"{adapter}:{impl}", {})
    per_impl[reason] = per_impl.get(reason, 0) + 1


def summary(store: dict) -> dict:
    """results.json ``not_applicable``: the total and the counts per implementation and reason."""
    return {"total": sum(n for reasons in store.values() for n in reasons.values()), "by_impl": store}
