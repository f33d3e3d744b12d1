"""``lossconf sweep-seeds``: seed parsing, and the command run end to end on a small matrix.

The adapter is SciPy's (a real library, run in the worker); the full four-framework sweep is the README's
job, not the test suite's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lossconf.adapters.loading import load_adapter
from lossconf.seed_sweep import case_seed, parse_seeds

ROOT = Path(__file__).resolve().parents[1]


def test_parse_seeds_reads_ranges_and_lists():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("5,0-1,5") == [0, 1, 5]


@pytest.mark.parametrize("text", ["", "3-1", "a", "-1"])
def test_parse_seeds_names_the_argument(text):
    with pytest.raises(ValueError, match="--seeds"):
        parse_seeds(text)


def test_case_seed_is_the_run_seed_for_random_cases_only():
    assert case_seed("rand_softmax_003", 7) == "7"
    assert case_seed("edge_softmax_inf", 7) == "fixed"


def _sweep(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lossconf.cli", "sweep-seeds", "--seeds", "0-2", "--adapters", "scipy",
         "--losses", "sigmoid", "--dtypes", "float64", "--budget", "2", "--out", str(out), *extra],
        capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_sweep_seeds_runs_every_seed_and_writes_its_record(tmp_path):
    reason = load_adapter("scipy").available()
    if reason:
        pytest.skip(reason)
    proc = _sweep(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "sweep.json").read_text(encoding="utf-8"))
    assert summary["seeds"] == [0, 1, 2] and summary["unexplained"] == {}
    # each seed is its own run; fixed (document, edge) cases ran with the first seed only
    runs = {s: json.loads((tmp_path / f"seed-{s}" / "results.json").read_text(encoding="utf-8")) for s in (0, 1, 2)}
    assert [r["seed"] for r in runs.values()] == [0, 1, 2]
    assert runs[0]["config"]["kinds"] != ["random"] and runs[1]["config"]["kinds"] == ["random"]
    assert summary["summary"]["total"] == sum(r["summary"]["total"] for r in runs.values())
    record = json.loads((tmp_path / "known_sweep.json").read_text(encoding="utf-8"))
    assert record["seeds"] == [0, 1, 2] and "scipy" in record["versions"] and record["complete"]

    # --resume keeps the seeds already complete: their results are not rewritten
    stamps = {s: (tmp_path / f"seed-{s}" / "results.json").stat().st_mtime_ns for s in (0, 1, 2)}
    (tmp_path / "seed-2" / "results.json").unlink()
    proc = _sweep(tmp_path, "--resume")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert all((tmp_path / f"seed-{s}" / "results.json").stat().st_mtime_ns == stamps[s] for s in (0, 1))
    assert json.loads((tmp_path / "sweep.json").read_text(encoding="utf-8"))["summary"] == summary["summary"]
