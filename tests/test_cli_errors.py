"""Bad input to the ``lossconf`` command: one line on stderr naming the problem, exit 2, no traceback.

Each case runs the real console script in a subprocess; none of them gets as far as starting a
framework (the input is rejected first), so they are quick.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

LOSSCONF = [sys.executable, "-m", "lossconf.cli"]


def _files(tmp: Path) -> dict[str, Path]:
    paths = {
        "malformed": tmp / "malformed.json",
        "not_results": tmp / "not_results.json",
        "array": tmp / "array.json",
        "torn_stream": tmp / "torn.jsonl",
        "plain_file": tmp / "plain_file",
    }
    paths["malformed"].write_text('{"schema": "lossconf-results/1", "checks": [', encoding="utf-8")
    paths["not_results"].write_text(json.dumps({"name": "a package.json", "version": "1.0"}), encoding="utf-8")
    paths["array"].write_text("[1, 2, 3]", encoding="utf-8")
    paths["torn_stream"].write_text('{"type": "check", "check": {}}\n', encoding="utf-8")
    paths["plain_file"].write_text("", encoding="utf-8")
    return paths


# (arguments with {placeholders}, words the error line must contain)
CASES = {
    "unknown loss": ("run --losses softmax,triplet --out {out}", ["--losses", "'triplet'", "softmax_cross_entropy"]),
    "unknown dtype": ("run --dtypes float32,float8 --out {out}", ["--dtypes", "'float8'", "bfloat16"]),
    "unknown adapter": ("run --adapters torch,mxnet --out {out}", ["--adapters", "'mxnet'", "torch"]),
    "adapter file missing": ("run --adapters {tmp}/nowhere.py:Adapter --out {out}", ["nowhere.py", "does not exist"]),
    "unknown kind": ("run --kinds edge,fuzz --out {out}", ["--kinds", "'fuzz'", "document"]),
    "malformed results": ("render {malformed}", ["malformed.json", "malformed JSON"]),
    "valid JSON, not results": ("render {not_results}", ["not_results.json", "not a valid lossconf results file"]),
    "JSON array, not results": ("render {array}", ["array.json", "expected a JSON object"]),
    "stream without header": ("render {torn_stream}", ["torn.jsonl", "not a valid lossconf results file"]),
    "results file missing": ("render {tmp}/absent.json", ["absent.json", "no such results file"]),
    "results path is a folder": ("render {tmp}", ["cannot read the results file"]),
    "diff of a non-results file": ("diff {not_results} {not_results}", ["not_results.json", "not a valid"]),
    "merge of a non-results file": ("merge {not_results} --out {out}/m.json", ["not_results.json", "not a valid"]),
    "unwritable output path": ("run --out {plain_file}/sub", ["--out", "cannot write", "plain_file"]),
    "output under /proc": ("report --out /proc/lossconf-out", ["--out", "cannot write", "/proc/lossconf-out"]),
    "seed not an integer": ("run --seed 1.5 --out {out}", ["--seed", "expected an integer", "'1.5'"]),
    "seed a word": ("report --seed abc --out {out}", ["--seed", "expected an integer", "'abc'"]),
    "seed negative": ("run --seed -3 --out {out}", ["--seed", "non-negative", "-3"]),
    "budget negative": ("run --budget -1 --out {out}", ["--budget", "non-negative", "-1"]),
    "budget not an integer": ("run --budget many --out {out}", ["--budget", "expected an integer", "'many'"]),
    "timeout zero": ("run --timeout 0 --out {out}", ["--timeout", "positive"]),
    "empty list": ("run --losses , --out {out}", ["--losses", "comma-separated"]),
    "unknown command": ("rerun", ["invalid choice", "'rerun'"]),
    "mode no adapter declares": ("run --adapters torch --modes eager,jit --out {out}", ["--modes", "'jit'", "compile"]),
    "compile shapes negative": ("run --compile-shapes -1 --out {out}", ["--compile-shapes", "non-negative"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_exit_2(tmp_path, name):
    template, words = CASES[name]
    paths = {k: str(v) for k, v in _files(tmp_path).items()}
    args = template.format(tmp=tmp_path, out=tmp_path / "out", **paths).split()
    proc = subprocess.run(LOSSCONF + args, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("lossconf"), lines[0]
    assert "error:" in lines[0], lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert proc.stdout == ""
