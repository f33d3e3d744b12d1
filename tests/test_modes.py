"""Execution modes as a dimension of the matrix: ids, selection, known-deviation scoping, and a real
run of torch eager and torch.compile side by side (frameworks only in the worker)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lossconf.adapters.loading import load_adapter
from lossconf.known import load_known_file
from lossconf.results import load
from lossconf.runner import selected_modes
from lossconf.verdicts import check_id


def test_default_mode_ids_stay_readable_and_other_modes_are_named() -> None:
    assert check_id("torch", "mse_loss", "float32", "doc000", "value") == "torch:mse_loss-float32-doc000-value"
    assert check_id("torch", "mse_loss", "float32", "doc000", "value", "compile") == (
        "torch:mse_loss@compile-float32-doc000-value")


def test_selected_modes() -> None:
    declared = ["eager", "function", "xla"]
    assert selected_modes(("all",), declared) == [("eager", True), ("function", False), ("xla", False)]
    assert selected_modes(("default",), declared) == [("eager", True)]
    assert selected_modes(("xla",), declared) == [("xla", False)]
    assert selected_modes(("compile",), declared) == []  # not this adapter's mode: nothing runs


def test_builtin_adapters_declare_their_modes() -> None:
    assert load_adapter("torch").modes == ("eager", "compile")
    assert load_adapter("jax").modes == ("jit", "eager")
    assert load_adapter("tensorflow").modes == ("eager", "function", "xla")
    assert load_adapter("keras_torch").modes == ("eager", "compile")
    assert load_adapter("keras_jax").modes == ("jit", "eager")
    assert load_adapter("paddle").modes == ("eager",)


def _known(tmp_path: Path, modes: str) -> Path:
    path = tmp_path / "torch.toml"
    path.write_text(
        '[[known]]\nid = "x"\nimpl = "sigmoid"\nquantity = "both"\nversions = ">=1"\n'
        f'link = "https://example.invalid"\ndescription = "d"\nmodes = {modes}\n', encoding="utf-8")
    return path


def test_known_deviation_is_scoped_to_its_modes(tmp_path) -> None:
    (entry,) = load_known_file(_known(tmp_path, '["compile"]'))
    assert entry.matches("torch", "sigmoid", "value", "float32", "c", "2.13.0", mode="compile")
    assert not entry.matches("torch", "sigmoid", "value", "float32", "c", "2.13.0", mode="eager")


@pytest.mark.parametrize("modes, words", [('["jit"]', ["'jit'", "compile"]), ('"compile"', ["list"])])
def test_known_deviation_modes_are_validated(tmp_path, modes, words) -> None:
    with pytest.raises(ValueError) as err:
        load_known_file(_known(tmp_path, modes))
    assert "modes" in str(err.value) and all(w in str(err.value) for w in words), err.value


def test_torch_eager_and_compile_side_by_side(tmp_path) -> None:
    reason = load_adapter("torch").available()  # never imports torch here
    if reason:
        pytest.skip(reason)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "lossconf.cli", "run", "--adapters", "torch", "--losses", "softmax_cross_entropy",
           "--dtypes", "float32", "--kinds", "document", "--modes", "all", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    checks = load(out / "results.json")["checks"]
    by_mode = {m: {c["id"] for c in checks if c["mode"] == m} for m in ("eager", "compile")}
    assert by_mode["eager"] and by_mode["compile"]
    assert all("@" not in i for i in by_mode["eager"]) and all("@compile-" in i for i in by_mode["compile"])
    assert {i.replace("@compile", "") for i in by_mode["compile"]} <= by_mode["eager"]
    assert all(c["verdict"] in ("pass", "variant", "known", "unsupported") for c in checks), [
        (c["id"], c["message"]) for c in checks if c["verdict"] in ("fail", "error")]


def _check(mode: str, verdict: str) -> dict:
    tag = "" if mode == "eager" else f"@{mode}"
    return {"id": f"torch:sigmoid{tag}-float16-c1-value", "case": "c1", "adapter": "torch", "impl": "sigmoid",
            "loss": "sigmoid", "dtype": "float16", "mode": mode, "quantity": "value", "verdict": verdict,
            "bound": 1e-3, "got": 0.0, "index": [0], "ratio": 5.0 if verdict == "fail" else 0.5, "message": ""}


def test_compiled_vs_eager_lists_disagreeing_modes_with_a_repro_per_mode() -> None:
    from lossconf.reports.agreement import analyze
    from lossconf.reports.html import mode_disagreements

    results = {"checks": [_check("eager", "pass"), _check("compile", "fail")], "cases": [], "implementations": [],
               "environment": {"adapters": {"torch": {"modes": ["eager", "compile"]}}}}
    (row,) = mode_disagreements(results)
    assert row["conforming"] == ["eager"] and row["deviating"] == ["compile"]
    repro = {c["mode"]: c["repro"] for c in row["checks"]}
    assert "dtype, 'compile')" in repro["compile"] and "dtype, 'eager')" in repro["eager"]
    (finding,) = analyze(results)  # each mode is its own party in the agreement view
    assert finding["kind"] == "single_framework" and finding["adapters"] == ["torch@compile"]
    results["checks"][1]["verdict"] = "pass"
    assert mode_disagreements(results) == []
