"""The conformance matrix as pytest tests: one test per (adapter, implementation, dtype, case).

Used by ``tests/test_conformance.py`` (the built-in adapters) and by the ``pytest11`` plugin
(``pytest --lossconf-adapter TARGET``). Collection starts the adapters' worker processes and plans
the checks (so test ids exist before anything runs); the first test runs the whole matrix once, in
the workers, and every test then asserts on its own checks. A framework that is not installed gives
one skipped test with the reason; an unsupported combination is skipped with the declared reason;
nothing that did not run passes.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from lossconf.runner import Run, RunConfig

ACCEPTED = ("pass", "variant", "known")


@dataclass
class Item:
    """One pytest test: the check ids it asserts on, or why it is skipped."""

    id: str
    check_ids: list[str] = field(default_factory=list)
    skip: str | None = None  # why it is skipped (framework not installed)
    broken: str | None = None  # why it fails without running (adapter failed to load)


class ConformanceSession:
    """Plans at construction, runs lazily once, answers per item."""

    def __init__(self, adapters: tuple[str, ...], *, budget: int = 64, seed: int = 0,
                 dtypes: tuple[str, ...] | None = None, losses: tuple[str, ...] | None = None,
                 out: Path | None = None, timeout: float = 120.0, by_loss: bool = False) -> None:
        if out is None:  # a folder of our own: removed with the session, at the latest when Python exits
            out = Path(tempfile.mkdtemp(prefix="lossconf-pytest-"))
            weakref.finalize(self, shutil.rmtree, out, True)
        kwargs = {"dtypes": dtypes} if dtypes else {}
        self.config = RunConfig(out=out, adapters=adapters, losses=losses, seed=seed, budget=budget,
                                timeout=timeout, **kwargs)
        self.run = Run(self.config)
        self.by_loss = by_loss  # one item per (adapter, loss, dtype) instead of per (implementation, dtype, case)
        self.run.prepare()
        self._results: dict | None = None
        self.items = self._items()

    def _items(self) -> list[Item]:
        env = self.run.header["environment"]
        # sorted: adapters are prepared in parallel threads, and pytest-xdist workers must collect one order
        items = [Item(f"{name}:not-installed", skip=reason) for name, reason in sorted(env["skipped_adapters"].items())]
        items += [Item(f"{name}:failed-to-load", broken=reason)
                  for name, reason in sorted(env["failed_adapters"].items())]
        groups: dict[str, Item] = {}

        def add(cid: str, loss: str, dtype: str) -> None:
            key = f"{cid.split(':', 1)[0]}:{loss}-{dtype}" if self.by_loss else _item_id(cid)
            groups.setdefault(key, Item(key)).check_ids.append(cid)

        for plan in self.run.plans.values():
            for rec in plan.unsupported:
                add(rec["id"], rec["loss"], rec["dtype"])
            for job in plan.jobs:
                for cid in job.check_ids:
                    add(cid, job.impl["loss"], job.dtype)
        return items + sorted(groups.values(), key=lambda i: i.id)

    def results(self) -> dict:
        """The results document (the matrix runs on first use)."""
        if self._results is None:
            self._results = self.run.execute()
            self._by_id = {c["id"]: c for c in self._results["checks"]}
        return self._results

    def outcome(self, item: Item) -> tuple[str, str]:
        """('pass'|'skip'|'fail', explanation) for one item."""
        if item.skip:
            return "skip", item.skip
        if item.broken:
            return "fail", f"adapter failed to load: {item.broken}"
        results = self.results()
        checks = [self._by_id.get(cid) for cid in item.check_ids]
        missing = [cid for cid, c in zip(item.check_ids, checks, strict=True) if c is None]
        if missing:
            return "fail", f"checks never produced (run incomplete?): {missing}"
        bad = [c for c in checks if c["verdict"] not in ACCEPTED + ("unsupported",)]
        if bad:
            return "fail", "\n\n".join(explain(results, c) for c in bad)
        if all(c["verdict"] == "unsupported" for c in checks):
            return "skip", f"unsupported: {checks[0]['message']}"
        return "pass", ""


def _item_id(check_id: str) -> str:
    return check_id.rsplit("-", 1)[0]  # drop the quantity: value and grad share one test


def explain(results: dict, check: dict) -> str:
    """A failure message that stands on its own: what, how far, the bound, how to reproduce."""
    lines = [f"{check['id']}: {check['verdict'].upper()} - {check['message']}"]
    if check.get("ratio") is not None:
        lines.append(
            f"  truth {check['truth']!r}, got {check['got']!r} at index {check['index']}; "
            f"error {check['error']} = {check['ulps']} ulp; bound {check['bound']} "
            f"(0.5 ulp + kappa*u*S, kappa={check['kappa']}, S={check['scale']}); error/bound = {check['ratio']}"
        )
    try:
        from lossconf.reports.repro import snippet

        lines.append("  reproduce:\n" + "\n".join("    " + s for s in snippet(results, check).splitlines()))
    except Exception:  # the explanation must never hide the failure itself
        lines.append(f"  reproduce: lossconf run --adapters {check['adapter']} --losses {check['loss']} "
                     f"--dtypes {check['dtype']} --seed {results['seed']}")
    return "\n".join(lines)
