"""Shards: a deterministic partition of one run's planned checks, so n machines (a CI matrix) split it.

The unit of the partition is one framework call (a ``jobs.Job``), never a single check: a batched
call concatenates many cases, and splitting it would change the shapes the framework sees (XLA
vectorizes 5 and 8 rows differently, by an ulp), so merged shards would not equal one unsharded run.
A call's key is ``adapter|impl|dtype|first case id`` -- the same on every machine because the plan
is (cases are seeded, jobs are built in a fixed order) -- and its shard is sha256(key) mod n, not
Python's ``hash`` (salted per process). Unsupported records (no call) use the same key with their
own case, so a case's value and gradient checks stay together.
"""

from __future__ import annotations

import hashlib
import re

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n); ValueError naming ``--shard`` unless 1 <= i <= n."""
    match = _SHARD.fullmatch(text)
    i, n = (int(match[1]), int(match[2])) if match else (0, 0)
    if not 1 <= i <= n:
        raise ValueError(f"--shard: expected i/n with 1 <= i <= n, got {text!r}")
    return i, n


def shard_of(key: str, n: int) -> int:
    """The 1-based shard of ``key`` among ``n``: 1 + sha256(key) mod n (stable across machines)."""
    return 1 + int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % n


def select(adapter: str, jobs: list, unsupported: list[dict], shard: tuple[int, int] | None) -> tuple[list, list]:
    """The jobs (framework calls) and unsupported records of ``adapter`` that belong to ``shard``."""
    if shard is None:
        return jobs, unsupported
    i, n = shard
    mine_jobs = [j for j in jobs if shard_of(f"{adapter}|{j.impl['name']}|{j.dtype}|{j.cases[0].id}", n) == i]
    mine_unsupported = [r for r in unsupported if shard_of(f"{adapter}|{r['impl']}|{r['dtype']}|{r['case']}", n) == i]
    return mine_jobs, mine_unsupported
