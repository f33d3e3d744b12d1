"""results.json schema 2 (packed checks) and schema 1 (a full record per check) both load.

``data/results-schema1.json`` was written by lossconf before schema 2 existed (torch,
sigmoid_cross_entropy, float32, budget 2): ``render``, ``diff`` and ``merge`` must keep working on it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lossconf.records import pack, slim, unpack
from lossconf.results import load

SCHEMA1 = Path(__file__).parent / "data" / "results-schema1.json"


def _lossconf(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lossconf.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def test_schema1_file_renders_diffs_and_merges(tmp_path):
    old = load(SCHEMA1)
    assert old["schema"] == "lossconf-results/1" and len(old["checks"]) == 42
    (tmp_path / "schema1.json").write_bytes(SCHEMA1.read_bytes())

    rendered = _lossconf("render", tmp_path / "schema1.json", "--out", tmp_path / "html")
    assert rendered.returncode == 0, rendered.stderr
    assert 'tests="42"' in (tmp_path / "html" / "junit.xml").read_text()
    assert (tmp_path / "html" / "report.html").stat().st_size > 0

    merged = _lossconf("merge", tmp_path / "schema1.json", "--out", tmp_path / "merged.json")
    assert merged.returncode == 0, merged.stderr
    assert json.loads((tmp_path / "merged.json").read_text())["schema"] == "lossconf-results/2"
    new = load(tmp_path / "merged.json")
    assert [(c["id"], c["verdict"], c["message"], c["known"]) for c in new["checks"]] == [
        (c["id"], c["verdict"], c["message"], c["known"]) for c in old["checks"]]

    diffed = _lossconf("diff", tmp_path / "schema1.json", tmp_path / "merged.json")
    assert diffed.returncode == 0, diffed.stderr
    assert "new failures: 0" in diffed.stdout and "removed checks: 0" in diffed.stdout


def test_packing_keeps_every_field_and_passing_checks_keep_no_arrays():
    checks = load(SCHEMA1)["checks"]
    cases = sorted({c["case"] for c in checks})[1:]  # one case id not in the list: stored by name
    assert unpack(pack(checks, cases), cases) == sorted(checks, key=lambda c: c["id"])
    varied = [{**c, "message": f"m{i % 3}-{c['quantity']}"} for i, c in enumerate(checks)]  # groups interleave
    assert unpack(pack(varied, cases), cases) == sorted(varied, key=lambda c: c["id"])
    passing = [c for c in checks if c["verdict"] == "pass"]
    assert passing and all(c["got_values"] is not None for c in passing[:3])  # schema 1 stored them
    assert all("got_values" not in slim(c) and "truth_values" not in slim(c) for c in passing)
    measured = next(c for c in passing if c["error"])
    failing = {**measured, "verdict": "fail", "truth_values": measured["got_values"]}
    kept = slim(failing)  # the evidence exact, its error measures to 5 significant digits
    assert (kept["got_values"], kept["truth"], kept["got"]) == (failing["got_values"], failing["truth"],
                                                                failing["got"])
    assert kept["ratio"] == float(f"{failing['ratio']:.5g}") and abs(kept["error"] / failing["error"] - 1) < 1e-4


def test_a_passing_replayable_case_is_stored_without_inputs_and_replays_to_the_same_ones(tmp_path):
    """results.json keeps a random or edge case's inputs only when one of its checks is detailed; the others
    replay by id (what reproductions fall back to) to exactly the inputs the run stored."""
    import numpy as np

    from lossconf.cases import all_cases, case_by_id
    from lossconf.header import case_json
    from lossconf.stream import write_results
    from lossconf.verdicts import DETAILED

    old = load(SCHEMA1)
    # the inputs as a run of this lossconf stores them (all_cases draws every loss in one go; case_by_id one)
    ran = {c.id: c for c in all_cases(old["seed"], old["budget"])}
    old["cases"] = [case_json(ran[c["id"]]) if c["id"] in ran else c for c in old["cases"]]
    shown = {c["case"] for c in old["checks"] if c["verdict"] in DETAILED}
    stored = {c["id"]: c for c in old["cases"]
              if c["kind"] in ("random", "edge") and c["first"] is not None and c["id"] not in shown}
    assert {c["kind"] for c in old["cases"] if c["id"] in stored} == {"random", "edge"}
    checks = old["checks"]
    detailed = next(c for c in checks if c["case"] in stored and c["verdict"] == "pass")
    detailed["verdict"] = "fail"  # one random case now has a detailed check: its inputs stay
    new = load(write_results(old, tmp_path / "results.json"))
    kept = {c["id"]: c for c in new["cases"]}
    assert kept[detailed["case"]]["first"] == stored[detailed["case"]]["first"]
    dropped = [i for i in stored if i != detailed["case"]]
    assert dropped and all(kept[i]["first"] is None and kept[i]["second"] is None for i in dropped)
    assert all(kept[i]["first"] is not None for i in shown)
    assert all(kept[c["id"]]["first"] is not None for c in old["cases"] if c["kind"] == "document")
    for i in dropped:
        replayed = case_by_id(i, new["seed"], new["budget"])
        np.testing.assert_array_equal(replayed.first.ravel(), np.ravel(np.asarray(stored[i]["first"], np.float64)))


def test_malformed_rows_and_case_inputs_are_named_where_they_are(tmp_path):
    """The packed rows and the cases' input arrays are checked outside jsonschema (for speed) by the schema's
    rules: a wrong verdict, a row that is not a list, a non-number input are each reported with their place."""
    import pytest

    from lossconf.results import validate
    from lossconf.stream import write_results

    packed = json.loads(write_results(load(SCHEMA1), tmp_path / "results.json").read_text())
    validate(packed)
    case = next(i for i, c in enumerate(packed["cases"]) if c["first"] is not None)
    for mutate, where in (
        (lambda d: d["checks"][1]["rows"][0].__setitem__(1, "passed"), "at checks/1/rows/0:"),
        (lambda d: d["checks"][0]["rows"].__setitem__(2, "pass"), "at checks/0/rows/2:"),
        (lambda d: d["cases"][case].__setitem__("first", [[1.0, "1.5"]]), f"at cases/{case}/first:"),
        (lambda d: d["cases"][case].__setitem__("second", [True]), f"at cases/{case}/second:"),
    ):
        broken = json.loads(json.dumps(packed))
        mutate(broken)
        with pytest.raises(ValueError, match=where):
            validate(broken)
