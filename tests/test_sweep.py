"""``lossconf sweep`` pieces that run on any machine: option errors, the environments it plans, and a worker
running in another interpreter (``LOSSCONF_WORKER_PYTHON``), which is what a sweep's version runs on.

Building environments needs uv and the package index; the README's demo does that (JAX 0.4.38, 0.6.2,
0.10.2), not the test suite.
"""

from __future__ import annotations

import site
import subprocess
import sys
from pathlib import Path

import pytest

from lossconf.adapters.loading import load_adapter
from lossconf.cli import main
from lossconf.runner import RunConfig, run
from lossconf.sweep import environment_for
from lossconf.worker import WORKER_PYTHON

SMALL = dict(adapters=("torch",), losses=("sigmoid",), dtypes=("float32",), seed=2, budget=2)


@pytest.mark.parametrize(("argv", "message"), [
    (["--framework", "mxnet", "--versions", "1.9"], "--framework: unknown framework 'mxnet'"),
    (["--framework", "jax", "--versions", ","], "--versions: expected comma-separated versions"),
    (["--framework", "jax", "--versions", "latest"], "--versions: expected comma-separated versions"),
    (["--framework", "jax", "--versions", "0.6.2,0.6.2"], "--versions: a version is listed twice"),
    (["--framework", "jax", "--versions", "0.6.2", "--adapters", "torch"], "--adapters: a sweep runs"),
    (["--framework", "jax", "--versions", "0.6.2", "--with", "optax==="], "is not a requirement"),
    (["--framework", "jax", "--versions", "0.6.2", "--constraints", "/nonexistent/c.txt"], "--constraints: no such"),
    (["--framework", "jax", "--versions", "0.6.2", "--shard", "3/2"], "--shard: expected i/n"),
])
def test_bad_options_are_usage_errors(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # nothing may be built
    assert main(["sweep", *argv, "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


def test_environment_per_version(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    env = environment_for("jax", "0.4.38", ("optax==0.2.5",))
    assert env.path == tmp_path / "lossconf" / "sweep" / "jax-0.4.38"
    assert env.requirements == ["jax[cpu]==0.4.38", "optax", "optax==0.2.5"]
    assert environment_for("torch", "2.5.1").requirements == ["torch==2.5.1"]


def _venv(path: Path, share_packages: bool) -> Path:
    """A new interpreter prefix (its own sys.executable); with this venv's packages when asked."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    if share_packages:
        purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        Path(purelib, "host.pth").write_text(f"import site; site.addsitedir({site.getsitepackages()[0]!r})\n")
    return python


def test_worker_runs_in_the_named_interpreter(tmp_path, monkeypatch):
    if load_adapter("torch").available():
        pytest.skip("torch is not installed")
    python = _venv(tmp_path / "venv", share_packages=True)
    monkeypatch.setenv(WORKER_PYTHON, str(python))
    results = run(RunConfig(out=tmp_path / "out", **SMALL))
    env = results["environment"]["adapters"]["torch"]
    assert env["interpreter"] == str(python) != sys.executable
    assert results["complete"] and results["summary"]["by_verdict"]["pass"] > 0
    assert results["summary"]["by_verdict"]["error"] == 0


def test_framework_missing_in_that_interpreter_is_skipped(tmp_path, monkeypatch):
    python = _venv(tmp_path / "bare", share_packages=False)
    monkeypatch.setenv(WORKER_PYTHON, str(python))
    results = run(RunConfig(out=tmp_path / "out", **SMALL))
    assert results["checks"] == []
    assert str(python) in results["environment"]["skipped_adapters"]["torch"]
