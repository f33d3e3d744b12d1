"""Results on disk: the append-only ``results.jsonl`` stream and the packed ``results.json``."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from lossconf.records import SCHEMA, expand, pack, tables
from lossconf.verdicts import DETAILED, finite_or_str, summarize


class RunError(Exception):
    """A run cannot start or resume (bad configuration, mismatching results file)."""


class ResultsStream:
    """Append-only ``results.jsonl``: one JSON object per line, flushed as it is written."""

    def __init__(self, path: Path, resume: bool) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        if resume:
            _drop_torn_tail(path)
        self.file = open(path, "a" if resume else "w", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, kind: str, payload: dict) -> bool:
        """Append one line ``{"type": kind, kind: payload}``; False (nothing written) once closed."""
        return self.write_many(kind, [jsonsafe(payload)])

    def write_many(self, kind: str, payloads: list[dict]) -> bool:
        """Append one line per (already JSON-safe) payload, flushed together; False once closed."""
        text = "".join(json.dumps({"type": kind, kind: p}, separators=(",", ":")) + "\n" for p in payloads)
        with self.lock:
            if self.file.closed:
                return False
            self.file.write(text)
            self.file.flush()
        return True

    def close(self) -> None:
        """Flush to disk and close."""
        with self.lock:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()


def _drop_torn_tail(path: Path) -> None:
    """Cut a final line without its newline (a run killed mid-write), so appended lines start clean."""
    with open(path, "rb+") as f:
        data = f.read()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            f.truncate(end)


def jsonsafe(obj):
    if isinstance(obj, dict):
        return {k: jsonsafe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonsafe(v) for v in obj]
    if isinstance(obj, np.generic):
        return jsonsafe(obj.item())
    return finite_or_str(obj)


def read_stream(path: Path) -> dict:
    """The lines of a results stream grouped by type; a torn last line (killed run) is dropped."""
    out: dict = {"header": None, "adapter": [], "check": [], "end": None}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                obj = json.loads(line)
                kind = obj["type"]
                item = obj[kind]
            except (json.JSONDecodeError, KeyError, TypeError):
                if line.endswith("\n"):
                    raise RunError(f"{path}: line {n} is not a results record") from None
                break  # torn final line from a killed run
            if isinstance(out.get(kind), list):
                out[kind].append(item)
            else:
                out[kind] = item
    if out["header"] is None:
        raise RunError(f"{path}: not a lossconf results stream (no header line)")
    return out


def assemble(header: dict, adapters: list[dict], checks: list[dict], complete: bool, interrupted: bool) -> dict:
    """The results document from a header, adapter descriptions and (slim or full) check records."""
    impls, kappas = tables(adapters), header["method"]["kappa"]
    checks = sorted((expand(c, impls, kappas) for c in checks), key=lambda c: c["id"])
    env = dict(header["environment"])
    for a in adapters:
        if "implementations" in a:
            env["adapters"] = {**env.get("adapters", {}), a["name"]: a["environment"]}
        for key in ("skipped_adapters", "failed_adapters"):
            if key in a:
                env[key] = {**env.get(key, {}), a["name"]: a[key]}
    verdicts_of: dict[tuple[str, str], set[str]] = {}  # (adapter, known id) -> verdicts of the checks it names
    for c in checks:
        if c.get("known"):
            verdicts_of.setdefault((c["adapter"], c["known"]), set()).add(c["verdict"])
    known = []
    for k in header["known"]:
        hits = verdicts_of.get((k["adapter"], k["id"]))
        status = "unused" if not hits else ("reproduced" if "known" in hits else "stale")
        known.append({**k, "status": status})
    return {
        **{k: v for k, v in header.items() if k not in ("environment", "known")},
        "complete": complete, "interrupted": interrupted,
        "finished": datetime.now(UTC).isoformat(timespec="seconds") if complete else None,
        "environment": env, "known": known,
        "implementations": [
            {"adapter": a["name"], **impl} for a in adapters for impl in a.get("implementations", [])
        ],
        "documents": header.get("documents", []),
        "checks": checks, "summary": summarize(checks),
    }


def write_results(results: dict, path: Path) -> Path:
    """Write results.json atomically (a reader never sees a half-written file), checks packed
    (``lossconf.records``), one line per check group."""
    doc = {k: v for k, v in results.items() if k != "checks"}
    doc["cases"] = _cases_to_store(doc.get("cases", []), results["checks"])
    head = json.dumps(jsonsafe({**doc, "schema": SCHEMA}), separators=(",", ":"))
    groups = pack(results["checks"], [c["id"] for c in results.get("cases", [])])
    body = ",\n".join(json.dumps(jsonsafe(g), separators=(",", ":")) for g in groups)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(f'{head[:-1]},"checks":[\n{body}\n]}}\n', encoding="utf-8")
    os.replace(tmp, path)
    return path


REPLAYED_KINDS = ("random", "edge", "invalid")  # case_by_id rebuilds them from id, seed and budget


def _cases_to_store(cases: list[dict], checks: list[dict]) -> list[dict]:
    """Cases for results.json: a random, edge or invalid case keeps its inputs only when one of its checks
    is ``DETAILED`` (shown in the report with inputs and a reproduction). The others are replayed by id
    (``lossconf.cases.case_by_id``, which reproductions fall back to), so a passing case costs its
    description only. Document cases keep theirs: they are the documents' own numbers."""
    detailed = {c["case"] for c in checks if c["verdict"] in DETAILED}
    out = []
    for case in cases:
        if case.get("kind") in REPLAYED_KINDS and case["id"] not in detailed:
            params = {k: f"array of {len(v)} (replay the case by its id)" if isinstance(v, list) else v
                      for k, v in case.get("params", {}).items()}
            case = {**case, "first": None, "second": None, "params": params}
        out.append(case)
    return out
