"""``lossconf check-adapter``: exit statuses 0/1/2, the contract battery's checks, its outputs.

Frameworks run in subprocesses (the CLI) and worker processes, never in the pytest process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from lossconf.contract import contract_id, expected_shape, summation_bound
from lossconf.results import load

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lossconf.cli", "check-adapter", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600, env=env)


def _needs_torch() -> None:
    from lossconf.adapters.loading import load_adapter

    reason = load_adapter("torch").available()
    if reason:
        pytest.skip(reason)


# -- pure parts ---------------------------------------------------------------------------------
def test_contract_id_reads_like_the_conformance_ids():
    assert contract_id("torch", "cross_entropy", "float16", "dtype_preserved") == \
        "contract:torch:cross_entropy-float16-dtype_preserved"


@pytest.mark.parametrize(("loss", "first", "second", "params", "want"), [
    ("sparse_softmax_cross_entropy", (4, 3), (4,), {"reduction": "none"}, (4,)),
    ("softmax_cross_entropy", (2, 3, 5), (2, 3, 5), {"reduction": "none", "axis": 1}, (2, 5)),
    ("mean_squared_error", (2, 3), (3,), {"reduction": "none"}, (2, 3)),
    ("sigmoid_cross_entropy", (2, 3), (2, 3), {"reduction": "sum"}, ()),
    ("kl_divergence", (4, 3), (4, 3), {"reduction": "mean"}, ()),
])
def test_expected_shape_follows_the_reduction(loss, first, second, params, want):
    assert expected_shape(loss, first, second, params) == want


def test_summation_bound_is_n_u_sum_abs_plus_half_ulp():
    # values 1, 2, -3 in float32: n u sum|v| = 3 * 2^-24 * 6; sum 0 -> 0.5 ulp(0) = smallest subnormal / 2
    assert summation_bound(np.array([1.0, 2.0, -3.0]), 0.0, "float32") == 18 * 2.0**-24 + 2.0**-150
    # sum 6: ulp(6) = 2^-21 in float32, so the bound is 18 * 2^-24 + 2^-22
    assert summation_bound(np.array([1.0, 2.0, 3.0]), 6.0, "float32") == 22 * 2.0**-24
    # mean: u sum|v| + 0.5 ulp(mean); mean 2 has ulp 2^-22
    assert summation_bound(np.array([1.0, 2.0, 3.0]), 2.0, "float32", mean=True) == 6 * 2.0**-24 + 2.0**-23


# -- exit status 2: the target cannot be loaded ------------------------------------------------------
def test_missing_file_exits_2_with_one_line(tmp_path):
    proc = _cli(str(tmp_path / "nope.py") + ":Adapter")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "expected path/to/file.py:Attr" in proc.stderr
    assert proc.stdout == ""


def test_unknown_name_exits_2(tmp_path):
    proc = _cli("no_such_framework_adapter", cwd=tmp_path)
    assert proc.returncode == 2
    assert "expected one of" in proc.stderr and proc.stderr.count("\n") == 1


def test_worker_that_fails_to_load_exits_2(tmp_path):
    path = tmp_path / "broken_load.py"
    path.write_text(
        "from lossconf.adapters.base import Adapter\n"
        "class Broken(Adapter):\n"
        "    name = 'broken'\n"
        "    module = 'json'\n"
        "    def load(self):\n"
        "        raise ImportError('libframework.so: cannot open shared object file')\n"
    )
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = _cli(f"{path}:Broken", "--losses", "mean_squared_error", "--budget", "0",
                env={**os.environ, "TMPDIR": str(tmp)})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "failed to load in its worker process" in proc.stderr and "libframework.so" in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert list(tmp.iterdir()) == []  # its temporary results folder is gone on this path too


def test_what_the_framework_prints_is_shown_after_the_verdict(tmp_path):
    """Workers write their own output to the run's workers/ folder; check-adapter, whose folder is temporary
    unless --out is given, prints it on stderr."""
    _needs_torch()
    path = tmp_path / "chatty.py"
    path.write_text(
        "import os\n"
        "from lossconf.adapters.torch import TorchAdapter\n"
        "class Chatty(TorchAdapter):\n"
        "    name = 'chatty'\n"
        "    def load(self):\n"
        "        super().load()\n"
        "        os.write(2, b'chatty: a framework warning\\n')\n"
    )
    proc = _cli(f"{path}:Chatty", "--losses", "mean_squared_error", "--dtypes", "float32", "--budget", "0")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "framework output: chatty, 1 line (" in proc.stderr and "\n  chatty: a framework warning" in proc.stderr
    assert "chatty: a framework warning" not in proc.stdout


# -- exit status 1: contract failures, with the evidence ----------------------------------------------
def test_false_declaration_and_dropped_dtype_exit_1_and_write_outputs(tmp_path):
    _needs_torch()
    path = tmp_path / "wrong_table.py"
    path.write_text(
        "from lossconf.adapters.base import Impl\n"
        "from lossconf.adapters.torch import TorchAdapter\n"
        "class WrongTable(TorchAdapter):\n"
        "    name = 'wrong_table'\n"
        "    def implementations(self):\n"
        "        import torch.nn.functional as F\n"
        "        return [\n"
        "            # works in float16 but says it does not: a false declaration\n"
        "            Impl('mean_squared_error', 'torch.nn.functional.mse_loss',\n"
        "                 lambda x, y, reduction: F.mse_loss(x, y, reduction=reduction),\n"
        "                 dtypes=('float32', 'float64')),\n"
        "            # computes in float32 and forgets to cast back\n"
        "            Impl('mean_absolute_error', 'torch.nn.functional.l1_loss',\n"
        "                 lambda x, y, reduction: F.l1_loss(x.float(), y.float(), reduction=reduction)),\n"
        "        ]\n"
    )
    out = tmp_path / "out"
    proc = _cli(f"{path}:WrongTable", "--losses", "mean_squared_error,mean_absolute_error",
                "--dtypes", "float16,float32", "--budget", "2", "--out", str(out))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "contract:wrong_table:mse_loss-float16-declared_unsupported: CONTRACT FAIL" in proc.stdout
    assert "contract:wrong_table:l1_loss-float16-dtype_preserved: CONTRACT FAIL" in proc.stdout
    assert "float16 inputs gave value/grad dtypes ['float32', 'float16']" in proc.stdout
    assert "contract:wrong_table:l1_loss-float32-dtype_preserved" not in proc.stdout  # float32 is right
    assert "case_by_id(" in proc.stdout  # a reproduction is printed
    assert proc.stdout.strip().splitlines()[-1] == (
        "wrong_table: DOES NOT CONFORM (losses: mean_absolute_error, mean_squared_error)")

    contract = json.loads((out / "contract.json").read_text())
    statuses = {c["id"]: c["status"] for c in contract}
    assert statuses["contract:wrong_table:mse_loss-float16-declared_unsupported"] == "fail"
    assert statuses["contract:wrong_table:mse_loss-float32-sum_of_none"] == "pass"
    results = load(out / "results.json")
    wrong_dtype = [c for c in results["checks"]
                   if c["impl"] == "l1_loss" and c["dtype"] == "float16" and c["quantity"] == "value"]
    assert wrong_dtype and all(c["verdict"] == "error" and "wrong dtype" in c["message"] for c in wrong_dtype)
    assert (out / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    suites = {s.get("name"): s for s in ET.parse(out / "junit.xml").getroot()}
    assert int(suites["contract"].get("failures")) == sum(c["status"] == "fail" for c in contract)


@pytest.mark.parametrize("documented", [False, True])
def test_a_documented_framework_error_skips_the_contract_instead_of_failing_it(tmp_path, documented):
    """The framework raising where a known entry says it does (tinygrad's float16 reduce on its
    PYTHON backend) leaves nothing to check the plumbing on: skipped with the entry's id, not error."""
    _needs_torch()
    (tmp_path / "known.toml").write_text(
        '[[known]]\nid = "raises-in-float16"\nimpl = "softmax"\nquantity = "both"\ndtypes = ["float16"]\n'
        'when = ["error"]\nversions = ">=2"\nlink = "https://example.org/issue"\n'
        'description = "the float16 kernel raises"\n')
    path = tmp_path / "raising.py"
    path.write_text(
        "from lossconf.adapters.base import Impl\n"
        "from lossconf.adapters.torch import TorchAdapter\n"
        "class Raising(TorchAdapter):\n"
        "    name = 'raising'\n"
        + ("    known_deviations = 'known.toml'\n" if documented else "")
        + "    def implementations(self):\n"
        "        import torch\n"
        "        def softmax(x, _, reduction, axis=-1):\n"
        "            if x.dtype == torch.float16:\n"
        "                raise RuntimeError('no float16 kernel')\n"
        "            return torch.softmax(x, axis)\n"
        "        return [Impl('softmax', 'torch.softmax', softmax, params=('axis',), reductions=('none',))]\n"
    )
    proc = _cli(f"{path}:Raising", "--losses", "softmax", "--dtypes", "float16,float32", "--budget", "2")
    line = next(s for s in proc.stdout.splitlines() if s.startswith("contract:") and "(of" in s)
    if documented:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        assert " 0 error" in line and " 0 skipped" not in line
    else:
        assert proc.returncode == 1
        assert "contract:raising:softmax-float16-dtype_preserved: CONTRACT ERROR" in proc.stdout


# -- the guide's worked example exits 0 ----------------------------------------------------------------
def test_guide_example_adapter_conforms():
    from lossconf.adapters.loading import load_adapter

    example = ROOT / "docs" / "examples" / "mygrad_adapter.py"
    reason = load_adapter(f"{example}:MyGradAdapter").available()
    if reason:
        pytest.skip(reason)
    proc = _cli(f"{example}:MyGradAdapter", "--budget", "4")
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "mygrad: CONFORMS"


@pytest.mark.parametrize(("seed", "budget"), [(1, 16), (7, 8)])
def test_guide_example_verdict_does_not_depend_on_the_seed(seed, budget):
    """A correct adapter conforms whatever the random draw (known deviations are mechanisms, not case ids)."""
    from lossconf.adapters.loading import load_adapter

    example = ROOT / "docs" / "examples" / "mygrad_adapter.py"
    reason = load_adapter(f"{example}:MyGradAdapter").available()
    if reason:
        pytest.skip(reason)
    proc = _cli(f"{example}:MyGradAdapter", "--seed", str(seed), "--budget", str(budget))
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "mygrad: CONFORMS"


@pytest.mark.parametrize(("seed", "budget"), [(3, 4), (11, 8), (19, 4)])
def test_torch_adapter_verdict_does_not_depend_on_the_seed(seed, budget):
    """The built-in torch adapter conforms (its deviations are registered as mechanisms) whatever the draw."""
    _needs_torch()
    proc = _cli("torch", "--seed", str(seed), "--budget", str(budget))
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "torch: CONFORMS"
