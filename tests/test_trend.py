"""Results from several builds of one framework: a CPU and a GPU host side by side, and the trend across
versions with known-deviation ranges measured against their registered ``versions``.

One real small torch run (in its worker process) is the base; the other builds are that results.json
edited the way another host or version would have written it (this machine has one torch and no GPU).
"""

from __future__ import annotations

import copy

import pytest

from lossconf.cli import main
from lossconf.reports.html import render_html
from lossconf.reports.trend import contradictions, trend_view
from lossconf.results import merge, write

KNOWN = "torch-sigmoid-subnormal-results-zero"  # registered versions ">=1.0"; reproduces on CPU float32


@pytest.fixture(scope="module")
def cpu(real_run):
    return real_run(adapters=("torch",), losses=("sigmoid",), dtypes=("float32",), seed=1, budget=4)


def _build(results: dict, **env) -> dict:
    other = copy.deepcopy(results)
    other["environment"]["adapters"]["torch"].update(env)
    return other


def _one_pass(results: dict) -> dict:
    return next(c for c in results["checks"] if c["verdict"] == "pass" and c["case"].startswith("rand_"))


def test_cpu_and_gpu_hosts_merge_side_by_side(cpu, tmp_path):
    version = cpu["environment"]["adapters"]["torch"]["version"]
    assert cpu["environment"]["adapters"]["torch"]["device"] == "cpu"
    gpu = _build(cpu, device="cuda:0")
    moved = _one_pass(gpu)
    moved.update(verdict="fail", ratio=3.0, message="error exceeds bound (edited: what a GPU might do)")
    merged = merge([cpu, gpu])
    assert merged["merge"]["conflicts"] == []
    envs = merged["environment"]["adapters"]
    assert {n: e["device"] for n, e in envs.items()} == {f"torch@{version}-cpu": "cpu",
                                                         f"torch@{version}-cuda0": "cuda:0"}
    assert len(merged["checks"]) == 2 * len(cpu["checks"]) == len({c["id"] for c in merged["checks"]})
    assert all(c["adapter"] in envs for c in merged["checks"])  # each check carries its build, so its device
    assert merged["summary"]["by_verdict"]["fail"] == cpu["summary"]["by_verdict"]["fail"] + 1
    write(merged, tmp_path / "merged.json")  # valid against the schema

    (series,) = trend_view(merged)["series"]
    assert [b["label"] for b in series["builds"]] == [f"{version} on cpu", f"{version} on cuda:0"]
    changed = [r for r in series["changes"] if r["verdict_changed"]]
    assert [(r["case"], r["quantity"], [p["verdict"] for p in r["per"]]) for r in changed] == [
        (moved["case"], moved["quantity"], ["pass", "fail"])]
    html = render_html(merged, tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'id="trend"' in html and f"{version} on cuda:0" in html


def test_one_build_has_no_trend(cpu):
    same = merge([cpu, copy.deepcopy(cpu)])
    assert same["merge"]["conflicts"] == [] and list(same["environment"]["adapters"]) == ["torch"]
    assert trend_view(same) is None and contradictions(same) == []


def _outside_range(cpu: dict) -> dict:
    """The base run as torch 0.4.1 would have recorded it: outside ">=1.0" the same deviation is a fail."""
    hits = [c for c in cpu["checks"] if c.get("known") == KNOWN and c["verdict"] == "known"]
    assert hits, f"{KNOWN} no longer reproduces in the base run: pick another entry for this test"
    old = _build(cpu, version="0.4.1")
    for c in old["checks"]:
        if c.get("known") == KNOWN and c["verdict"] == "known":
            c.update(verdict="fail", known=None)
    return old


def test_known_ranges_are_measured_against_the_registration(cpu):
    old = _outside_range(cpu)
    fixed = _build(cpu, version="2.99.0")  # inside the range, but the deviation is gone
    for c in fixed["checks"]:
        if c.get("known") == KNOWN and c["verdict"] == "known":
            c.update(verdict="pass", known=None, got=c["truth"], ratio=0.0)
    merged = merge([fixed, cpu, old])
    version = cpu["environment"]["adapters"]["torch"]["version"]
    (series,) = trend_view(merged)["series"]
    assert [b["version"] for b in series["builds"]] == ["0.4.1", version, "2.99.0"]  # oldest first
    row = next(k for k in series["known"] if k["id"] == KNOWN)
    assert [p["status"] for p in row["per"]] == ["reproduces", "reproduces", "does not reproduce"]
    assert [p["registered"] for p in row["per"]] == [False, True, True]
    assert row["reproduces"] == ["0.4.1", version]
    assert contradictions(merged) == [
        f"torch {KNOWN}: reproduces on 0.4.1, outside its registered range '>=1.0'",
        f"torch {KNOWN}: registered for 2.99.0 ('>=1.0') but does not reproduce there",
    ]
    # an entry whose checks never ran here is 'not run', never a contradiction
    unrun = [k for k in series["known"] if k["id"] != KNOWN]
    assert unrun and all(p["status"] == "not run" for k in unrun for p in k["per"])


def test_merge_prints_the_contradictions(cpu, tmp_path, capsys):
    write(cpu, tmp_path / "a.json")
    write(_outside_range(cpu), tmp_path / "b.json")
    assert main(["merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--out", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert f"known-deviation range contradicted: torch {KNOWN}: reproduces on 0.4.1, outside" in out
