"""Check records in three forms: full in memory, slim in the stream, packed in results.json.

- **full** (what render, diff, merge, the report and tests read): every field of
  ``lossconf.verdicts.base_record``;
- **slim** (one line of ``results.jsonl`` per check, and what a run keeps in memory): the identifying
  fields plus only the measured fields that differ from their empty value; ``api``, ``loss`` and
  ``kappa`` follow from the adapter's table and the method section, so they are left out;
- **packed** (``results.json``, schema ``lossconf-results/2``): checks grouped per (adapter,
  implementation, dtype, quantity), one JSON array per check::

      [case, verdict, error, ulps, bound, ratio, scale, index, truth, got, seconds, {rest}]

  where ``case`` is an index into the document's ``cases`` (or the case id), the nine measures are
  present only when the check was measured, and ``{rest}`` (variant, known, stale, message as an
  index into the group's ``messages``, and the stored arrays of a check that does not pass) only
  when not empty.

A passing check stores its scalars (rounded to 5 significant digits), never its arrays; a check that does
not pass its error measures to 5 digits, its truth, got and arrays exact. Schema-1 files (every check a
full record) still load.
"""

from __future__ import annotations

from collections.abc import Iterable

SCHEMA = "lossconf-results/2"
MEASURES = ("error", "ulps", "bound", "ratio", "scale", "index", "truth", "got", "seconds")
EMPTY: dict = {
    "verdict": "error", "error": None, "ulps": None, "bound": None, "ratio": None, "kappa": None, "scale": None,
    "index": None, "truth": None, "got": None, "got_values": None, "truth_values": None,
    "variant": None, "known": None, "stale": False, "message": "", "seconds": 0.0,
}
IDENTITY = ("id", "case", "adapter", "impl", "mode", "dtype", "quantity", "verdict")
DERIVED = ("api", "loss", "kappa")
GROUP = ("adapter", "impl", "dtype", "quantity")
# what a check that does not pass keeps to 5 digits too: its truth, got and arrays stay exact (the evidence)
ERROR_MEASURES = ("error", "ulps", "bound", "ratio", "scale")


def short(x: float, digits: int = 5) -> float:
    """A passing check's scalar to 5 significant digits (plenty for a ratio to a bound)."""
    return float(f"{x:.{digits}g}")


def slim(record: dict) -> dict:
    """The stream form of a full (JSON-safe) record: identity plus the non-empty measured fields
    (a passing check keeps no arrays, and its scalars to 5 significant digits, seconds to 3; any other
    keeps its error measures to 5 digits, its truth, got and arrays exact)."""
    passing = record["verdict"] == "pass"
    drop = DERIVED + (("got_values", "truth_values") if passing else ())
    out = {k: v for k, v in record.items() if k in IDENTITY or (k not in drop and k in EMPTY and v != EMPTY[k])}
    rounded = MEASURES if passing else ERROR_MEASURES
    out.update({k: short(v) for k, v in out.items() if k in rounded and isinstance(v, float)})
    if passing:
        out["seconds"] = short(record["seconds"], 3)
    return out


Tables = dict[tuple[str, str], tuple[str, str]]  # (adapter, impl) -> (api, loss)


def tables(adapters: Iterable[dict]) -> Tables:
    """(adapter, impl) -> (api, loss), from the adapters' descriptions."""
    return {(a["name"], i["name"]): (i["api"], i["loss"]) for a in adapters for i in a.get("implementations", [])}


def expand(record: dict, impls: Tables, kappas: dict) -> dict:
    """The full record of a slim (or already full) one; ``kappas`` is the method section's kappa table."""
    full = {**EMPTY, "mode": "", **record}
    if "api" not in record:
        full["api"], full["loss"] = impls.get((record["adapter"], record["impl"]), ("", ""))
    if "kappa" not in record and full["ratio"] is not None:
        full["kappa"] = kappas.get(full["loss"], {}).get(full["quantity"])
    order = ("id", "case", "adapter", "impl", "api", "loss", "dtype", "mode", "quantity", *EMPTY)
    return {k: full[k] for k in order}


def pack(checks: list[dict], case_ids: list[str]) -> list[dict]:
    """Full records -> groups of rows (the results.json form); see the module docstring."""
    where = {c: i for i, c in enumerate(case_ids)}
    groups: dict[tuple, dict] = {}
    said: dict[tuple, dict[str, int]] = {}  # per group: message -> index in its "messages"
    for c in checks:
        mode = c.get("mode", "")
        key = (*(c[k] for k in GROUP), mode)
        group = groups.get(key)
        if group is None:
            group = groups[key] = {**{k: c[k] for k in GROUP}, "api": c["api"], "loss": c["loss"],
                                   "kappa": None, "messages": [], "rows": []}
            if mode:  # the mode, and whether ids name it (modes other than the adapter's default do)
                group.update(mode=mode, mode_in_id=f"{c['impl']}@{mode}-" in c["id"])
        row = [where.get(c["case"], c["case"]), c["verdict"]]
        rest = {k: c[k] for k in ("got_values", "truth_values", "variant", "known", "stale") if c[k] != EMPTY[k]}
        if c["message"]:  # many checks share one message (every unsupported one of a declaration)
            index = said.setdefault(key, {}).setdefault(c["message"], len(group["messages"]))
            if index == len(group["messages"]):
                group["messages"].append(c["message"])
            rest["message"] = index
        if c["ratio"] is not None:
            row += [c[k] for k in MEASURES]
            group["kappa"] = c["kappa"]
        elif c["seconds"]:
            rest["seconds"] = c["seconds"]
        if rest:
            row.append(rest)
        group["rows"].append(row)
    return list(groups.values())


def unpack(groups: list[dict], case_ids: list[str]) -> list[dict]:
    """Groups of rows -> full records, sorted by id."""
    from lossconf.verdicts import check_id

    out = []
    for g in groups:
        for row in g["rows"]:
            case = case_ids[row[0]] if isinstance(row[0], int) else row[0]
            rest = dict(row[-1]) if len(row) > 2 and isinstance(row[-1], dict) else {}
            if isinstance(rest.get("message"), int):
                rest["message"] = g["messages"][rest["message"]]
            measured = row[2:2 + len(MEASURES)] if len(row) >= 2 + len(MEASURES) else None
            mode = g.get("mode", "")
            record = {"id": check_id(g["adapter"], g["impl"], g["dtype"], case, g["quantity"],
                                     mode if g.get("mode_in_id") else ""), "case": case, "mode": mode,
                      **{k: g[k] for k in ("adapter", "impl", "api", "loss", "dtype", "quantity")},
                      **EMPTY, "verdict": row[1], **rest}
            if measured is not None:
                record.update(zip(MEASURES, measured, strict=True), kappa=g["kappa"])
            out.append(record)
    return sorted(out, key=lambda c: c["id"])


def is_packed(checks: list) -> bool:
    """Whether a document's checks are in the packed (schema 2) form."""
    return bool(checks) and "rows" in checks[0]
