"""The pytest plugin: ``pytest --lossconf-adapter TARGET`` runs the battery as ordinary tests, in a
subprocess, on a zoo member (fails), on the correct torch adapter (passes) and with xdist ``-n 2``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ZOO = Path(__file__).parent / "bugzoo" / "zoo.py"
SMALL = ["--lossconf-losses", "mean_squared_error", "--lossconf-dtypes", "float32", "--lossconf-budget", "2"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """An empty project outside the repository (so its tests are not collected), with one ordinary test."""
    from lossconf.adapters.loading import load_adapter

    if load_adapter("torch").available():
        pytest.skip("the plugin tests use the torch adapter")
    path = tmp_path_factory.mktemp("plugin")
    (path / "test_ordinary.py").write_text("def test_ordinary():\n    assert True\n")
    return path


def _pytest(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "-q", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, timeout=900)


def _outcomes(stdout: str) -> dict[str, str]:
    """node id -> PASSED/FAILED/SKIPPED from the -rA short summary."""
    out = {}
    for line in stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word in ("PASSED", "FAILED", "SKIPPED", "ERROR") and rest.startswith("lossconf::"):
            out[rest.split(" - ")[0]] = word
    return out


def test_without_the_option_the_plugin_adds_nothing(workdir):
    proc = _pytest(workdir, "--collect-only")
    assert proc.returncode == 0, proc.stdout
    assert "test_ordinary.py::test_ordinary" in proc.stdout
    assert "lossconf::" not in proc.stdout


@pytest.fixture(scope="module")
def zoo_run(workdir) -> subprocess.CompletedProcess:
    """One plain (no xdist) plugin run on a zoo member, shared by the tests that read it."""
    return _pytest(workdir, "--lossconf-adapter", f"{ZOO}:SumForMean", *SMALL)


def test_zoo_member_fails_with_explanations(zoo_run):
    proc = zoo_run
    assert proc.returncode == 1, proc.stdout[-3000:]
    outcomes = _outcomes(proc.stdout)
    assert outcomes["lossconf::contract:zoo_sum_for_mean:mse_loss-float32-mean_of_none"] == "FAILED"
    assert outcomes["lossconf::contract:zoo_sum_for_mean:mse_loss-float32-sum_of_none"] == "PASSED"
    assert outcomes["lossconf::contract:zoo_sum_for_mean:mse_loss-float32-dtype_preserved"] == "PASSED"
    assert outcomes["lossconf::zoo_sum_for_mean:mse_loss-float32-edge_mse_broadcast_col"] == "FAILED"
    assert "exceeds the summation bound" in proc.stdout  # the contract's explanation
    assert "reproduce:" in proc.stdout


def test_correct_adapter_passes_and_collects_readable_ids(workdir):
    collected = _pytest(workdir, "--collect-only", "--lossconf-adapter", "torch", *SMALL)
    ids = [line for line in collected.stdout.splitlines() if line.startswith("lossconf::")]
    assert "lossconf::contract:torch:mse_loss-float32-dtype_preserved" in ids
    assert "lossconf::torch:mse_loss-float32-edge_mse_huge" in ids
    proc = _pytest(workdir, "--lossconf-adapter", "torch", *SMALL)
    assert proc.returncode == 0, proc.stdout[-3000:]
    outcomes = _outcomes(proc.stdout)
    assert set(outcomes) == set(ids)  # every collected item ran
    assert set(outcomes.values()) <= {"PASSED", "SKIPPED"}


def test_xdist_workers_collect_the_same_items_and_agree(workdir, zoo_run):
    pytest.importorskip("xdist")
    plain = _outcomes(zoo_run.stdout)
    proc = _pytest(workdir, "-n", "2", "--lossconf-adapter", f"{ZOO}:SumForMean", *SMALL)
    assert "Different tests were collected" not in proc.stdout + proc.stderr
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert _outcomes(proc.stdout) == plain
