"""What results.json says about its run besides the checks: the machine, the error model's method,
the cases as stored, and the document examples."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np

from lossconf.case import MAX_PARAM_ELEMENTS, Case
from lossconf.reference import CATALOG, UNIT_ROUNDOFF, kappa


def environment() -> dict:
    """Python, platform, CPU and NumPy of the machine running the reference."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "python": platform.python_version(), "platform": platform.platform(), "cpu": cpu,
        "cores": os.cpu_count(), "numpy": np.__version__, "adapters": {}, "skipped_adapters": {},
        "failed_adapters": {},
    }


def method() -> dict:
    """The error model's constants, per loss, for the report's method section."""
    return {
        "unit_roundoff": dict(UNIT_ROUNDOFF),
        "kappa": {lid: {q: kappa(lid, q) for q in loss.quantities} for lid, loss in CATALOG.items()},
        "scales": {lid: loss.scale for lid, loss in CATALOG.items()},
        "formulas": {lid: {"value": loss.formula, "gradient": loss.gradient} for lid, loss in CATALOG.items()},
        "error_model": "bound = 0.5 ulp_dtype(truth) + kappa * (u_dtype * S(x) + smallest subnormal); pass when "
        "|got - truth| <= bound elementwise; non-finite values must match exactly; adapters declaring "
        "flush-to-zero arithmetic may also be off by the smallest normal number (variant flush_subnormals)",
        **{key: data for key, data in _measured().items()},
    }


def _measured() -> dict:
    """Committed measurements shown in the method section: the reference's accuracy against the mpmath
    oracle (benchmarks/reference_accuracy.py) and the bug zoo's detection rate (benchmarks/bug_zoo.py)."""
    out = {}
    for key, name in (("reference_accuracy", "reference_accuracy.json"), ("bug_zoo", "bugzoo.json"),
                      ("known_sweep", "known_sweep.json")):  # lossconf sweep-seeds
        path = Path(__file__).with_name(name)
        if path.exists():
            out[key] = json.loads(path.read_text(encoding="utf-8"))
    return out


def documents(kinds: tuple[str, ...], losses: tuple[str, ...] | None, cases: list[Case]) -> list[dict]:
    """The document examples with the reference's values (errata included), for the losses in the run."""
    if "document" not in kinds:
        return []
    from lossconf.cases import document_checks

    loss_of = {c.id: c.loss for c in cases}
    return [d for d in document_checks() if losses is None or loss_of.get(d["case"]) in losses]


def _finite_max_abs(a: np.ndarray, block: int = 1 << 22) -> float:
    """max |x| over the finite elements (0 if none), in blocks: a large case's filtered copy and its
    absolute values would cost twice its 1 GiB again."""
    flat = a.reshape(-1)
    return max((float(np.max(np.abs(b), where=np.isfinite(b), initial=0.0))
                for b in (flat[i:i + block] for i in range(0, flat.size, block))), default=0.0)


def case_json(case: Case) -> dict:
    """A case as results.json stores it: its description, magnitude and (small) inputs."""
    d = case.describe()
    d["magnitude"] = _finite_max_abs(case.first)
    small = case.first.size + (0 if case.second is None else case.second.size) <= 256 and all(
        not isinstance(v, np.ndarray) or v.size <= MAX_PARAM_ELEMENTS for v in case.params.values())
    d["first"] = case.first.tolist() if small else None
    d["second"] = None if case.second is None or not small else case.second.tolist()
    return d
