"""Seed sweep: the default matrix over many seeds, to show that the verdicts do not hang on one draw.

Each seed is its own run in ``<out>/seed-<n>/`` (so memory stays that of one run, a worker that
accumulated compiled shapes starts afresh, and an interrupted sweep resumes seed by seed); document
and edge cases do not depend on the seed, so they run with the first seed only. A ``SeedSweep``
keeps of each run only what the summary needs: per implementation the unexplained fails and errors
and, per known deviation, the seeds under which it reproduced.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict


def parse_seeds(text: str) -> list[int]:
    """'0-19' or '0,3,5-7' -> sorted seeds; ValueError naming the argument otherwise."""
    seeds: set[int] = set()
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m or (m[2] is not None and int(m[2]) < int(m[1])):
            raise ValueError(f"--seeds: expected non-negative integers or ranges like 0-19, got {text!r}")
        seeds.update(range(int(m[1]), int(m[2] or m[1]) + 1))
    return sorted(seeds)


def case_seed(case_id: str, seed: int) -> str:
    """The seed a case of a run with ``seed`` depends on: ``seed`` for random cases, 'fixed' for the others."""
    return str(seed) if case_id.startswith("rand_") else "fixed"


def _seed_order(seed: str) -> tuple:
    """'fixed' first, then seeds in numeric order."""
    return (seed != "fixed", int(seed) if seed.isdigit() else 0)


class SeedSweep:
    """The summary of a sweep, fed one run (one seed) at a time."""

    def __init__(self, seeds: list[int]) -> None:
        self.seeds = seeds
        self.unexplained: dict[str, list[dict]] = defaultdict(list)
        self.reproduced: dict[str, set[str]] = defaultdict(set)
        self.known_ids: dict[str, None] = {}
        self.by_verdict: Counter = Counter()
        self.by_adapter: dict[str, Counter] = defaultdict(Counter)
        self.versions: dict[str, str] = {}
        self.budget: int | None = None
        self.complete = True

    def add(self, results: dict, seed: int) -> None:
        """Fold one seed's results into the summary."""
        for c in results["checks"]:
            where = case_seed(c["case"], seed)
            self.by_verdict[c["verdict"]] += 1
            self.by_adapter[c["adapter"]][c["verdict"]] += 1
            if c["verdict"] in ("fail", "error"):
                self.unexplained[f"{c['adapter']}:{c['impl']}"].append(
                    {"id": c["id"], "verdict": c["verdict"], "seed": where, "message": c["message"]})
            elif c["verdict"] == "known":
                self.reproduced[c["known"]].add(where)
        ran = results["summary"]["by_adapter"]
        self.known_ids.update((k["id"], None) for k in results["known"] if k["adapter"] in ran)
        adapters = results["environment"].get("adapters", {})
        self.versions.update({a: env.get("version", "") for a, env in adapters.items()})
        self.budget = results.get("budget")
        self.complete = self.complete and bool(results.get("complete"))

    def summary(self) -> dict:
        """Counts, the unexplained fails/errors per implementation, and where each known deviation reproduced."""
        return {
            "seeds": self.seeds,
            "summary": {"total": sum(self.by_verdict.values()), "by_verdict": dict(self.by_verdict),
                        "by_adapter": {a: dict(v) for a, v in self.by_adapter.items()}},
            "unexplained": dict(sorted(self.unexplained.items())),
            "known": {k: sorted(self.reproduced.get(k, ()), key=_seed_order) for k in self.known_ids},
        }

    def record(self) -> dict:
        """What the report's method section states: seeds, budget, framework versions, unexplained counts."""
        per_adapter: dict[str, int] = defaultdict(int)
        for impl, rows in self.unexplained.items():
            per_adapter[impl.split(":")[0]] += len(rows)
        return {
            "seeds": self.seeds, "budget": self.budget, "complete": self.complete, "versions": self.versions,
            "unexplained": {a: per_adapter.get(a, 0) for a in self.versions},
            "known_reproduced": sum(1 for k in self.known_ids if self.reproduced.get(k)),
            "known_total": len(self.known_ids),
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
        by_seed = sorted({r["seed"] for r in rows}, key=_seed_order)
        lines.append(f"  {impl}: {len(rows)} (seeds {', '.join(by_seed)})")
        lines += [f"    {r['verdict']} {r['id']}: {r['message'][:160]}" for r in rows[:limit]]
    lines.append("known deviations (where they reproduced):")
    for kid, where in summary["known"].items():
        lines.append(f"  {kid}: {', '.join(where) if where else 'nowhere'}")
    return "\n".join(lines)
