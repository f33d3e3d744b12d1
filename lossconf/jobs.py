"""Framework calls planned from cases: one case per call, or row-compatible cases concatenated."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossconf.cases import Case
from lossconf.reference import CATALOG
from lossconf.verdicts import cast_inputs

MAX_BATCH_ELEMENTS = 1 << 20


@dataclass
class Job:
    """One framework call: one case, or several row-compatible random cases concatenated."""

    impl: dict
    dtype: str
    cases: list[Case]
    check_ids: list[str]
    mode: str = ""
    default_mode: bool = True  # the adapter's default mode: check ids leave it out


def _batch_key(case: Case) -> tuple | None:
    """Cases with equal keys can share one call, concatenated along axis 0; None: run alone.

    Only with reduction "none", where axis 0 holds independent samples: never for a 1-D input of a
    class-axis loss (axis 0 is the class axis there), never when the target broadcasts.
    """
    if case.params.get("reduction", "none") != "none" or case.first.ndim == 0 or case.first.shape[0] == 0:
        return None
    if case.kind == "invalid":  # each alone: its call may raise, and it has no truth to batch
        return None
    if CATALOG[case.loss].grad_params:  # a gradient for a shared input (W) sums over every row
        return None
    if any(case.params.get(k) is not None for k in ("input_lengths", "target_lengths")):
        return None  # one entry per sequence (CTC): a call of concatenated cases would need them concatenated
    if CATALOG[case.loss].classes_axis and (
        case.first.ndim < 2 or case.params.get("axis", -1) % case.first.ndim == 0
    ):
        return None
    if case.second is not None and case.second.shape[:1] != case.first.shape[:1]:
        return None
    if case.second is not None and case.second.ndim != case.first.ndim and not np.issubdtype(
        case.second.dtype, np.integer
    ):
        return None
    params = tuple(
        (k, v.tobytes() if isinstance(v, np.ndarray) else repr(v)) for k, v in sorted(case.params.items())
    )
    second = None if case.second is None else (case.second.dtype.str, case.second.shape[1:])
    return (case.loss, case.first.shape[1:], second, params)


def make_jobs(impl: dict, dtype: str, cases: list[Case], ids: dict, batch: bool, mode: tuple = ("", True)) -> list[Job]:
    """Group the runnable cases of one (impl, dtype, mode) into framework calls; ``mode`` is
    (name, whether it is the adapter's default)."""
    jobs: list[Job] = []
    groups: dict[tuple, list[Case]] = {}
    for case in cases:
        key = _batch_key(case) if batch else None
        if key is None:
            jobs.append(Job(impl, dtype, [case], ids[case.id], *mode))
        else:
            groups.setdefault(key, []).append(case)
    for group in groups.values():
        chunk: list[Case] = []
        size = 0
        for case in group + [None]:
            if case is None or (chunk and size + case.first.size > MAX_BATCH_ELEMENTS):
                if chunk:
                    jobs.append(Job(impl, dtype, chunk, [i for c in chunk for i in ids[c.id]], *mode))
                chunk, size = [], 0
            if case is not None:
                chunk.append(case)
                size += case.first.size
    return jobs


def input_elements(case: Case) -> int:
    """Elements of a case's inputs, array params included (linear CE's weight is a param)."""
    arrays = [case.first, case.second, *(v for v in case.params.values() if isinstance(v, np.ndarray))]
    return sum(a.size for a in arrays if a is not None)


def job_order(jobs: list[Job]) -> list[Job]:
    """The same jobs in the order a worker runs them (stable: the others keep their order):

    - jobs of large single cases last but one, grouped by (case, dtype): a truth too large for the truth
      cache is held only until the next one is needed, so every implementation and mode checked on a
      large case should follow each other (it was recomputed per implementation);
    - invalid inputs last: a framework that does not check them may corrupt its own heap, and the damage
      can surface in a later, valid call (MLX's cross_entropy with out-of-range labels; a later
      edge-case call then aborted with "corrupted size vs. prev_size" in 1 of 18 runs)."""
    def key(job: Job) -> tuple:
        case = job.cases[0]
        if case.kind == "invalid":
            return (2,)
        if len(job.cases) > 1 or input_elements(case) < MAX_BATCH_ELEMENTS:
            return (0,)
        return (1, case.id, job.dtype)
    return sorted(jobs, key=key)


def concat(job: Job) -> tuple[np.ndarray, np.ndarray | None, dict]:
    parts = [cast_inputs(c, job.dtype) for c in job.cases]
    first = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    seconds = [p[1] for p in parts]
    second = None if seconds[0] is None else (np.concatenate(seconds) if len(parts) > 1 else seconds[0])
    return first, second, parts[0][2]


def signature(job: Job) -> tuple:
    """What a compiler specializes on: input shapes and parameters (array params by shape)."""
    case = job.cases[0]
    rows = sum(c.first.shape[0] for c in job.cases)  # batched cases are concatenated along axis 0
    first = case.first.shape if len(job.cases) == 1 else (rows, *case.first.shape[1:])
    second = None if case.second is None else (
        case.second.shape if len(job.cases) == 1 else (rows, *case.second.shape[1:]))
    params = tuple((k, v.shape if isinstance(v, np.ndarray) else repr(v)) for k, v in sorted(case.params.items()))
    return (first, second, params)
