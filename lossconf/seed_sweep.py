"""Seed sweep: the default matrix over many seeds, to show that the verdicts do not hang on one draw.

Document and edge cases do not depend on the seed, so they run once; the random cases of every
seed run together in one conformance run (one worker start per framework, batched as usual), each
case id tagged with its seed (``rand_softmax_003@s7``). The summary lists, per implementation, the
unexplained fails and errors and, per known deviation, the seeds under which it reproduced.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import replace

from lossconf.cases import Case
from lossconf.random_cases import random_cases

_SEEDED = re.compile(r"@s(\d+)$")


def parse_seeds(text: str) -> list[int]:
    """'0-19' or '0,3,5-7' -> sorted seeds; ValueError naming the argument otherwise."""
    seeds: set[int] = set()
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m or (m[2] is not None and int(m[2]) < int(m[1])):
            raise ValueError(f"--seeds: expected non-negative integers or ranges like 0-19, got {text!r}")
        seeds.update(range(int(m[1]), int(m[2] or m[1]) + 1))
    return sorted(seeds)


def seeded_cases(seeds: list[int], budget: int, losses=None) -> list[Case]:
    """The random cases of every seed, ids tagged with the seed (``rand_softmax_003@s7``)."""
    return [replace(c, id=f"{c.id}@s{seed}") for seed in seeds for c in random_cases(seed, budget, losses)]


def case_seed(case_id: str) -> str:
    """The seed a sweep case came from, or 'fixed' for document and edge cases."""
    m = _SEEDED.search(case_id)
    return m[1] if m else "fixed"


def summarize_sweep(results: dict) -> dict:
    """Per implementation the unexplained fails/errors; per known deviation the seeds it reproduced on."""
    unexplained: dict[str, list[dict]] = defaultdict(list)
    reproduced: dict[str, set[str]] = defaultdict(set)
    for c in results["checks"]:
        if c["verdict"] in ("fail", "error"):
            unexplained[f"{c['adapter']}:{c['impl']}"].append(
                {"id": c["id"], "verdict": c["verdict"], "seed": case_seed(c["case"]), "message": c["message"]})
        elif c["verdict"] == "known":
            reproduced[c["known"]].add(case_seed(c["case"]))
    known = {k["id"]: sorted(reproduced.get(k["id"], ()), key=lambda s: (s != "fixed", int(s) if s.isdigit() else 0))
             for k in results["known"] if k["adapter"] in results["summary"]["by_adapter"]}
    return {
        "seeds": results.get("sweep_seeds", []), "summary": results["summary"],
        "unexplained": dict(sorted(unexplained.items())),
        "known": known,
    }


def format_sweep(summary: dict, limit: int = 5) -> str:
    """A plain-text table of a sweep summary."""
    seeds = summary["seeds"]
    lines = [f"seeds: {len(seeds)} ({seeds[0]}-{seeds[-1]})" if seeds else "seeds: none",
             "checks: " + ", ".join(f"{n} {v}" for v, n in summary["summary"]["by_verdict"].items() if n)]
    per_adapter: dict[str, int] = defaultdict(int)
    for impl, rows in summary["unexplained"].items():
        per_adapter[impl.split(":")[0]] += len(rows)
    for adapter in summary["summary"]["by_adapter"]:
        lines.append(f"{adapter}: {per_adapter.get(adapter, 0)} unexplained fail/error")
    for impl, rows in summary["unexplained"].items():
        by_seed = sorted({r["seed"] for r in rows})
        lines.append(f"  {impl}: {len(rows)} (seeds {', '.join(by_seed)})")
        lines += [f"    {r['verdict']} {r['id']}: {r['message'][:160]}" for r in rows[:limit]]
    lines.append("known deviations (where they reproduced):")
    for kid, where in summary["known"].items():
        lines.append(f"  {kid}: {', '.join(where) if where else 'nowhere'}")
    return "\n".join(lines)


def verification_record(results: dict, summary: dict) -> dict:
    """What the report's method section states: seeds, budget, framework versions, unexplained counts."""
    adapters = results["environment"].get("adapters", {})
    per_adapter: dict[str, int] = defaultdict(int)
    for impl, rows in summary["unexplained"].items():
        per_adapter[impl.split(":")[0]] += len(rows)
    return {
        "seeds": summary["seeds"], "budget": results.get("budget"), "complete": results.get("complete"),
        "versions": {a: env.get("version", "") for a, env in adapters.items()},
        "unexplained": {a: per_adapter.get(a, 0) for a in adapters},
        "known_reproduced": sum(1 for where in summary["known"].values() if where),
        "known_total": len(summary["known"]),
    }
