"""The bug zoo: ``lossconf check-adapter`` exits 1 on every deliberately broken adapter, naming the
broken loss, and exits 0 on the correct torch adapter restricted to the same losses (the control:
each zoo member is torch's adapter with one row broken). Runs in subprocesses, two at a time; the
dtypes are float32 and float64 to keep the whole zoo near a minute and a half on two cores."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "bugzoo"))

from zoo import MEMBERS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ZOO = Path(__file__).parent / "bugzoo" / "zoo.py"
DTYPES = "float32,float64"


def _check_adapter(target: str, losses: str, budget: int) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "lossconf.cli", "check-adapter", target, "--losses", losses,
           "--budget", str(budget), "--dtypes", DTYPES]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def zoo_runs() -> dict[str, subprocess.CompletedProcess]:
    from lossconf.adapters.loading import load_adapter

    if load_adapter("torch").available():
        pytest.skip("the bug zoo is built on PyTorch, which is not installed")
    with ThreadPoolExecutor(2) as pool:
        procs = pool.map(lambda m: _check_adapter(f"{ZOO}:{m.__name__}", m.loss, m.budget), MEMBERS)
        return {m.__name__: p for m, p in zip(MEMBERS, procs, strict=True)}


def test_zoo_has_at_least_fourteen_distinct_members():
    assert len(MEMBERS) >= 14
    assert len({m.name for m in MEMBERS}) == len(MEMBERS)
    assert len({m.mistake for m in MEMBERS}) == len(MEMBERS)


@pytest.mark.parametrize("member", MEMBERS, ids=[m.__name__ for m in MEMBERS])
def test_check_adapter_catches_member(zoo_runs, member):
    proc = zoo_runs[member.__name__]
    assert proc.returncode == 1, f"{member.__name__} ({member.mistake}) not caught:\n{proc.stdout[-3000:]}"
    verdict_line = proc.stdout.strip().splitlines()[-1]
    assert verdict_line == f"{member.name}: DOES NOT CONFORM (losses: {member.loss})", verdict_line
    assert "FAIL - " in proc.stdout or "CONTRACT FAIL" in proc.stdout  # an explanation is printed


def test_correct_torch_adapter_passes_the_same_losses():
    from lossconf.adapters.loading import load_adapter

    if load_adapter("torch").available():
        pytest.skip("torch is not installed")
    losses = ",".join(sorted({m.loss for m in MEMBERS}))
    proc = _check_adapter("torch", losses, max(m.budget for m in MEMBERS))
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "torch: CONFORMS"


def test_committed_measurement_lists_exactly_the_zoo():
    data = json.loads((ROOT / "lossconf" / "bugzoo.json").read_text(encoding="utf-8"))
    assert sorted(m["name"] for m in data["members"]) == sorted(m.__name__ for m in MEMBERS)
    assert data["total"] == len(data["members"])
    assert data["detected"] == sum(m["detected"] for m in data["members"])
    for key in ("measured", "lossconf_version"):
        assert data[key]
