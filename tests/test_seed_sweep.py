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


def test_case_seed_reads_the_tag():
    assert case_seed("rand_softmax_003@s7") == "7"
    assert case_seed("edge_softmax_inf") == "fixed"


def test_sweep_seeds_runs_every_seed_and_writes_its_record(tmp_path):
    reason = load_adapter("scipy").available()
    if reason:
        pytest.skip(reason)
    proc = subprocess.run(
        [sys.executable, "-m", "lossconf.cli", "sweep-seeds", "--seeds", "0-2", "--adapters", "scipy",
         "--losses", "sigmoid", "--dtypes", "float64", "--budget", "2", "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "sweep.json").read_text(encoding="utf-8"))
    assert summary["seeds"] == [0, 1, 2] and summary["unexplained"] == {}
    record = json.loads((tmp_path / "known_sweep.json").read_text(encoding="utf-8"))
    assert record["seeds"] == [0, 1, 2] and "scipy" in record["versions"]
