"""The report layer: results.json schema, HTML, JUnit XML, cross-framework agreement, repro snippets.

Everything here runs on ``synthetic_results()``: a small, hand-written results dict in the shape the
runner writes, with every verdict present and hostile strings in messages. Its numbers are made up for
the report (nothing here checks a loss), except the document example, whose numbers are printed in
documents/001 ("rel1= [ 0.02215516 3.09967351]").
"""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest

from lossconf.random_cases import GROUP_SIZE
from lossconf.reports.agreement import analyze
from lossconf.reports.html import render_html
from lossconf.reports.junit import render_junit
from lossconf.reports.repro import snippet
from lossconf.verdicts import summarize

SCHEMA = json.loads((Path(__file__).parents[1] / "lossconf" / "results_schema.json").read_text())
VERDICTS = ("pass", "variant", "fail", "known", "error", "unsupported", "skipped")
HOSTILE = 'worker crashed: <script>alert(1)</script> "quoted" & more'

TORCH_CE_SOURCE = '''def _cross_entropy(first, second, reduction, label_smoothing=0.0, weight=None, axis=-1):
    return torch.nn.functional.cross_entropy(
        torch.movedim(first, axis, 1), torch.movedim(second, axis, 1),
        reduction=reduction, label_smoothing=label_smoothing, weight=weight)
'''


def _check(adapter, impl, api, case, loss, dtype, quantity, verdict, **fields) -> dict:
    record = {
        "id": f"{adapter}:{impl}-{dtype}-{case}-{quantity}", "case": case, "adapter": adapter, "impl": impl,
        "api": api, "loss": loss, "dtype": dtype, "quantity": quantity, "verdict": verdict,
        "error": None, "ulps": None, "bound": None, "ratio": None, "kappa": None, "scale": None,
        "index": None, "truth": None, "got": None, "got_values": None, "truth_values": None,
        "variant": None, "known": None, "stale": False, "message": "", "seconds": 0.01,
    }
    if verdict in ("pass", "variant", "fail", "known"):
        record.update(error=1e-7, ulps=0.8, bound=2e-7, ratio=0.5, kappa=4.0, scale=6.0, index=[0],
                      truth=0.02215516, got=0.0221552)
    record.update(fields)
    return record


def synthetic_results() -> dict:
    """A small results dict in the lossconf-results/1 shape, with every verdict present."""
    ce, bce = "softmax_cross_entropy", "binary_cross_entropy"
    t_ce = ("torch", "cross_entropy[probs]", "torch.nn.functional.cross_entropy")
    tf_ce = ("tensorflow", "softmax_cross_entropy_with_logits", "tf.nn.softmax_cross_entropy_with_logits")
    jx_ce = ("jax", "softmax_cross_entropy", "optax.losses.softmax_cross_entropy")
    tf_bce = ("tensorflow", "BinaryCrossentropy", "keras.losses.BinaryCrossentropy")
    t_bce = ("torch", "binary_cross_entropy", "torch.nn.functional.binary_cross_entropy")
    checks = [
        _check(*t_ce, "doc001_rel1", ce, "float32", "value", "pass",
               got_values=[0.02215516, 3.0996735], truth_values=[0.02215516, 3.09967351]),
        _check(*t_ce, "doc001_rel1", ce, "float32", "grad", "pass"),
        _check(*tf_ce, "doc001_rel1", ce, "float32", "value", "pass"),
        _check(*jx_ce, "doc001_rel1", ce, "float32", "value", "pass"),
        _check(*t_ce, "edge_gap_1e4", ce, "float16", "value", "fail", error=0.5, ulps=64.0, bound=0.01,
               ratio=50.0, kappa=4.0, scale=1e4, index=[1], truth=1.0e4, got="inf",
               message="at (1,): expected 10000.0, got inf"),
        _check(*tf_ce, "edge_gap_1e4", ce, "float16", "value", "pass", ratio=0.3),
        _check(*jx_ce, "edge_gap_1e4", ce, "float16", "value", "error", message=HOSTILE),
        _check(*t_ce, "edge_nan", ce, "float32", "grad", "known", ratio="inf", error="inf", ulps="inf",
               got="nan", truth=0.0, known="torch-ce-nan-grad",
               message="at (0, 1): expected 0.0, got nan (known: NaN gradient for -inf logits)"),
        _check(*jx_ce, "rand_ce_000", ce, "bfloat16", "grad", "pass", ratio=0.9),
        _check(*tf_ce, "rand_ce_000", ce, "bfloat16", "grad", "pass", ratio=0.02),
        _check(*t_ce, "rand_ce_000", ce, "float64", "value", "unsupported",
               message="torch.nn.functional.cross_entropy is declared without float64"),
        _check(*tf_bce, "edge_p0", bce, "float32", "value", "variant", variant="clip_probabilities_1e-7",
               ratio=0.2, truth=16.118095, got=16.118095),
        _check(*t_bce, "edge_p0", bce, "float32", "value", "variant", variant="log_clamp_-100",
               ratio=0.0, truth=100.0, got=100.0),
        _check("paddle", "cross_entropy", "paddle.nn.functional.cross_entropy", "doc001_rel1", ce, "float32",
               "value", "skipped", message="paddle is not installed (pip install 'lossconf[paddle]')"),
    ]
    # many failures in one cell: the details must cap them with a count
    checks += [
        _check(*t_ce, f"rand_ce_{i:03d}", ce, "bfloat16", "value", "fail", ratio=2.0 + i, error=0.1,
               message=f"error 0.1 exceeds bound 0.05 & <b>not bold</b> #{i}")
        for i in range(1, 13)
    ]
    cases = [
        {"id": "doc001_rel1", "loss": ce, "kind": "document", "shape": [2, 3], "second_shape": [2, 3],
         "params": {"reduction": "none"}, "dtypes": None,
         "provenance": {"document": "001_c7ce1b8d329fb7b2.txt", "quote": "rel1= [ 0.02215516 3.09967351]"},
         "note": "", "magnitude": 6.0, "first": [[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]],
         "second": [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]},
        {"id": "edge_gap_1e4", "loss": ce, "kind": "edge", "shape": [2, 2], "second_shape": [2, 2],
         "params": {"reduction": "none"}, "dtypes": None, "provenance": {},
         "note": 'huge gap <img src=x onerror="window.__pwned=1">', "magnitude": 1.0e4,
         "first": [[1.0e4, 0.0], [0.0, 1.0e4]], "second": [[0.0, 1.0], [1.0, 0.0]]},
        {"id": "edge_nan", "loss": ce, "kind": "edge", "shape": [1, 3], "second_shape": [1, 3],
         "params": {"reduction": "sum"}, "dtypes": None, "provenance": {}, "note": "-inf logit",
         "magnitude": 1.0, "first": [[1.0, "-inf", 0.0]], "second": [[1.0, 0.0, 0.0]]},
        {"id": "edge_p0", "loss": bce, "kind": "edge", "shape": [2], "second_shape": [2],
         "params": {"reduction": "none"}, "dtypes": None, "provenance": {}, "note": "p exactly 0",
         "magnitude": 1.0, "first": [0.0, 1.0], "second": [1.0, 1.0]},
    ] + [
        {"id": f"rand_ce_{i:03d}", "loss": ce, "kind": "random", "shape": [64, 10], "second_shape": [64, 10],
         "params": {"reduction": "mean"}, "dtypes": None, "provenance": {"seed": 7}, "note": "",
         "magnitude": 3.5, "first": None, "second": None}
        for i in range(13)
    ]
    impl = {"dtypes": ["float16", "bfloat16", "float32", "float64"], "params": ["label_smoothing"],
            "reductions": ["none", "mean", "sum"], "variant": None, "composed": False, "grad": True, "note": ""}
    implementations = [
        {**impl, "adapter": "torch", "name": "cross_entropy[probs]", "loss": ce, "api": t_ce[2],
         "dtypes": ["float16", "bfloat16", "float32"], "source": TORCH_CE_SOURCE},
        {**impl, "adapter": "tensorflow", "name": tf_ce[1], "loss": ce, "api": tf_ce[2],
         "source": "lambda first, second, reduction: tf.nn.softmax_cross_entropy_with_logits(second, first)\n"},
        {**impl, "adapter": "jax", "name": jx_ce[1], "loss": ce, "api": jx_ce[2],
         "source": "lambda first, second, reduction: optax.losses.softmax_cross_entropy(first, second)\n"},
        {**impl, "adapter": "tensorflow", "name": tf_bce[1], "loss": bce, "api": tf_bce[2], "params": [],
         "variant": "clip_probabilities_1e-7", "source": "keras.losses.BinaryCrossentropy(reduction=None)\n"},
        {**impl, "adapter": "torch", "name": t_bce[1], "loss": bce, "api": t_bce[2], "params": [],
         "variant": "log_clamp_-100", "source": "torch.nn.functional.binary_cross_entropy\n"},
    ]
    return {
        "schema": "lossconf-results/1", "lossconf_version": "0.1.0", "complete": True, "interrupted": False,
        "started": "2025-01-01T00:00:00+00:00", "finished": "2025-01-01T00:01:00+00:00", "seed": 7, "budget": 4,
        "config": {"adapters": ["torch", "tensorflow", "jax", "paddle"], "losses": [], "kinds": ["document",
                   "edge", "random"], "dtypes": ["float16", "bfloat16", "float32", "float64"], "scale": "default"},
        "environment": {
            "python": "3.11.2", "platform": "Linux-x86_64", "cpu": "x86_64 (2 cores)", "numpy": "2.1.0",
            "adapters": {
                "torch": {"framework": "torch", "version": "2.13.0", "device": "cpu",
                          "flags": {"deterministic": True}},
                "tensorflow": {"framework": "tensorflow", "version": "2.21.0", "device": "cpu", "flags": {}},
                "jax": {"framework": "jax", "version": "0.10.2", "device": "cpu", "flags": {"x64": True}},
            },
            "skipped_adapters": {"paddle": "paddle is not installed (pip install 'lossconf[paddle]')"},
            "failed_adapters": {"plugins/mine.py:Mine": "worker died during load (exit code -11)"},
        },
        "method": {
            "unit_roundoff": {"float16": 2.0**-11, "bfloat16": 2.0**-8, "float32": 2.0**-24, "float64": 2.0**-53},
            "kappa": {ce: {"value": 4.0, "grad": 4.0}, bce: {"value": 2.0, "grad": 3.0}},
            "scales": {ce: "sum_c |t_c| (|lse(x)| + |x_c|)", bce: "|z log p| + |(1-z) log(1-p)| + 1"},
            "formulas": {ce: {"value": "-sum_c t_c log_softmax(x)_c", "gradient": "softmax(x) - t"},
                         bce: {"value": "-[z log p + (1-z) log(1-p)]", "gradient": "(p - z) / (p (1 - p))"}},
            "error_model": "bound = 0.5 ulp(truth) + kappa * u * S",
            "reference_accuracy": {ce: {"float32": 0.5, "float64": 0.51}},
            "bug_zoo": {"detection_rate": 1.0, "caught": 6, "planted": 6},
        },
        "variants": {
            "clip_probabilities_1e-7": {"description": "probabilities clipped to [1e-7, 1-1e-7]",
                                        "citation": "https://keras.io/api/losses/probabilistic_losses/ (clip)"},
            "log_clamp_-100": {"description": "log clamped to >= -100",
                               "citation": "https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html"},
        },
        "known": [
            {"id": "torch-ce-nan-grad", "adapter": "torch", "impl": "cross_entropy[probs]", "quantity": "grad",
             "dtypes": [], "cases": ["edge_nan*"], "versions": ">=2.0", "status": "reproduced",
             "link": "https://github.com/pytorch/pytorch/issues/00000",
             "description": "NaN gradient for -inf logits"},
            {"id": "tf-old-bug", "adapter": "tensorflow", "impl": tf_ce[1], "quantity": "both", "dtypes": [],
             "cases": [], "versions": "<2.0", "status": "stale", "link": "javascript:alert(2)",
             "description": "fixed long ago"},
        ],
        "implementations": implementations,
        "cases": cases,
        "documents": [
            {"case": "doc001_rel1", "document": "001_c7ce1b8d329fb7b2.txt", "where": "rel1",
             "quote": "rel1= [ 0.02215516 3.09967351]", "quantity": "value", "printed": "[0.02215516 3.09967351]",
             "reference": [0.022155163, 3.0996735], "printed_by": "tensorflow", "reproduced": True,
             "erratum": None},
            {"case": "doc001_rel2", "document": "001_c7ce1b8d329fb7b2.txt", "where": "rel2",
             "quote": "rel2= [ 0.56292844 1.16333222]", "quantity": "value", "printed": "0.5629",
             "reference": 0.5629, "printed_by": "tensorflow", "reproduced": False,
             "erratum": "printed with a typo & <i>markup</i>"},
        ],
        "checks": checks,
        "summary": summarize(checks),
    }


@pytest.fixture
def results() -> dict:
    return synthetic_results()


# -- schema ---------------------------------------------------------------------------------------
def test_synthetic_results_follow_the_schema_and_are_strict_json(results):
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(results, SCHEMA, cls=jsonschema.Draft202012Validator)
    json.dumps(results, allow_nan=False)
    assert {c["verdict"] for c in results["checks"]} == set(VERDICTS)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r["checks"][0].update(verdict="maybe"),
        lambda r: r["checks"][0].pop("ratio"),
        lambda r: r["checks"][0].update(got="NaN"),
        lambda r: r["checks"][0].update(quantity="hessian"),
        lambda r: r.update(schema="lossconf-results/3"),
        lambda r: r.update(surprise=1),
        lambda r: r["config"].update(scale="huge"),
        lambda r: r["known"][0].update(status="fixed"),
        lambda r: r["cases"][0].update(kind="dream"),
        lambda r: r["summary"]["by_verdict"].update(maybe=1),
    ],
)
def test_schema_rejects_malformed_results(results, mutate):
    mutate(results)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(results, SCHEMA, cls=jsonschema.Draft202012Validator)


def test_schema_accepts_results_without_optional_method_fields(results):
    del results["method"]["reference_accuracy"], results["method"]["bug_zoo"]
    results["summary"]["planned"] = 100
    results["config"].update(seed=7, budget=4)
    results["environment"]["cores"] = 2
    results.update(timings={"torch": 1.5, "reference": 0.25}, merge={"shards": 2, "conflicts": []})
    jsonschema.validate(results, SCHEMA, cls=jsonschema.Draft202012Validator)


# -- HTML -----------------------------------------------------------------------------------------
class _Page(HTMLParser):
    """Collects tags with attributes and the page's text, to inspect a rendered report."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.script_bodies: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        (self.script_bodies if self._in_script else self.text).append(data)


def _render(results, tmp_path) -> tuple[str, _Page]:
    path = render_html(results, tmp_path / "report.html")
    html = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(html)
    return html, page


def test_html_is_self_contained_and_escapes_everything(results, tmp_path):
    html, page = _render(results, tmp_path)
    assert [t for t, _ in page.tags].count("script") == 1  # ours only
    assert "alert(1)" not in "".join(page.script_bodies)
    assert HOSTILE in "".join(page.text)  # shown as text, decoded by the parser
    assert "<script>alert(1)" not in html and "<img src=x" not in html and "<b>not bold" not in html
    for tag, attrs in page.tags:
        assert "src" not in attrs, f"<{tag}> loads {attrs['src']}"
        assert not any(k.startswith("on") for k in attrs), f"<{tag}> has an inline handler {attrs}"
        assert tag not in ("link", "iframe", "img", "object", "embed")
        if tag == "a":
            assert attrs["href"].startswith(("#", "https://", "http://")), attrs["href"]
    assert "url(" not in html and "@import" not in html
    assert "default-src 'none'" in html


def test_html_counts_add_up_per_verdict_and_framework(results, tmp_path):
    _, page = _render(results, tmp_path)
    counts = {(a["data-adapter"], a["data-verdict"]): None for t, a in page.tags if t == "td" and "data-verdict" in a}
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    for key in counts:
        m = re.search(rf'data-adapter="{re.escape(key[0])}" data-verdict="{key[1]}">(\d+)<', html)
        counts[key] = int(m.group(1))
    expected = Counter((c["adapter"], c["verdict"]) for c in results["checks"])
    for adapter in {c["adapter"] for c in results["checks"]}:
        for verdict in VERDICTS:
            assert counts[(adapter, verdict)] == expected[(adapter, verdict)]
        assert counts[(adapter, "total")] == sum(expected[(adapter, v)] for v in VERDICTS)
    assert counts[("*", "total")] == results["summary"]["total"] == len(results["checks"])
    assert sum(counts[("*", v)] for v in VERDICTS) == results["summary"]["total"]
    matrix_n = sum(int(a["data-n"]) for t, a in page.tags if t == "td" and "data-n" in a)
    assert matrix_n == results["summary"]["total"]


def test_matrix_cell_shows_its_worst_verdict_and_links_to_details(results, tmp_path):
    html, page = _render(results, tmp_path)
    cells = [a for t, a in page.tags if t == "td" and a.get("data-worst")]
    # torch cross_entropy float16 value holds one fail: the cell is red and its anchor exists
    worst = {a.get("data-worst") for a in cells}
    assert {"fail", "error", "known", "variant", "pass", "unsupported", "skipped"} <= worst
    anchors = [a["href"][1:] for t, a in page.tags if t == "a" and "cell-link" in a.get("class", "")]
    ids = {a.get("id") for _, a in page.tags}
    assert anchors and all(anchor in ids for anchor in anchors)


def test_worst_verdict_ordering_prefers_fail_over_pass_and_error_over_known(results, tmp_path):
    t_ce = ("torch", "cross_entropy[probs]", "torch.nn.functional.cross_entropy")
    ce = "softmax_cross_entropy"
    results["checks"] = [
        _check(*t_ce, "doc001_rel1", ce, "float32", "value", "pass"),
        _check(*t_ce, "edge_nan", ce, "float32", "value", "fail"),
        _check(*t_ce, "doc001_rel1", ce, "float16", "value", "known", known="torch-ce-nan-grad"),
        _check(*t_ce, "edge_nan", ce, "float16", "value", "error", message="boom"),
        _check(*t_ce, "doc001_rel1", ce, "bfloat16", "value", "skipped", message="no"),
        _check(*t_ce, "edge_nan", ce, "bfloat16", "value", "unsupported", message="no"),
    ]
    results["summary"] = summarize(results["checks"])
    _, page = _render(results, tmp_path)
    worst = [a["data-worst"] for t, a in page.tags if t == "td" and a.get("data-worst")]
    assert worst == ["error", "unsupported", "fail"]  # float16, bfloat16, float32 columns


def test_details_cap_long_lists_with_a_count(results, tmp_path):
    html, _ = _render(results, tmp_path)
    assert "and 4 more checks like these in this cell" in html  # 12 bfloat16 fails, 8 shown in full
    assert "rand_ce_012" in html


def test_incomplete_run_shows_a_banner_with_counts(results, tmp_path):
    html, _ = _render(results, tmp_path)
    assert "incomplete run" not in html
    results.update(complete=False, interrupted=True)
    results["summary"]["planned"] = 120
    html, _ = _render(results, tmp_path)
    n = len(results["checks"])
    assert f"incomplete run: {n} of 120 checks" in html


def test_summary_that_does_not_match_the_records_is_flagged(results, tmp_path):
    results["summary"]["by_verdict"]["pass"] += 5
    results["summary"]["total"] += 5
    html, _ = _render(results, tmp_path)
    assert 'id="summary-mismatch"' in html


def test_documents_variants_known_and_method_are_shown(results, tmp_path):
    html, page = _render(results, tmp_path)
    text = "".join(page.text)
    assert "erratum: printed with a typo & <i>markup</i>" in text
    assert any(t == "tr" and a.get("class") == "erratum" for t, a in page.tags)
    hrefs = {a["href"] for t, a in page.tags if t == "a"}
    assert "https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html" in hrefs
    assert "https://github.com/pytorch/pytorch/issues/00000" in hrefs
    assert "javascript:alert(2)" not in hrefs and "javascript:alert(2)" in text
    assert any(t == "tr" and a.get("class") == "known-stale" for t, a in page.tags)
    assert "detection rate: 1" in text
    assert "plugins/mine.py:Mine: worker died during load (exit code -11)" in text
    assert "bound = 0.5 ulp(truth) + κ·u·S" in text
    assert text.count("<svg") == 0 and html.count("<svg") == 2  # both plots, generated inline


# -- JUnit ----------------------------------------------------------------------------------------
def test_junit_has_one_testcase_per_check_with_escaped_messages(results, tmp_path):
    path = render_junit(results, tmp_path / "out" / "results.junit.xml")
    root = ET.parse(path).getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == len(results["checks"])
    verdicts = Counter(c["verdict"] for c in results["checks"])
    assert len(root.findall(".//testcase/failure")) == verdicts["fail"]
    assert len(root.findall(".//testcase/error")) == verdicts["error"]
    assert len(root.findall(".//testcase/skipped")) == verdicts["skipped"] + verdicts["unsupported"] + verdicts["known"]
    assert int(root.get("tests")) == len(results["checks"])
    names = {(c.get("classname"), c.get("name")) for c in cases}
    assert ("torch.cross_entropy[probs]", "float16-edge_gap_1e4-value") in names
    error = root.find(".//testcase/error")
    assert error.get("message") == HOSTILE
    assert b"<script>" not in path.read_bytes()


def test_junit_replaces_characters_xml_cannot_hold(results, tmp_path):
    results["checks"][4]["message"] = "bad \x00 byte \x1b[31m"
    root = ET.parse(render_junit(results, tmp_path / "j.xml")).getroot()
    assert root.find(".//testcase/failure").get("message").startswith("bad \ufffd byte")


# -- agreement ------------------------------------------------------------------------------------
def _agreement_checks(truth_ok: bool) -> dict:
    """Three frameworks on one case; with ``truth_ok`` False the truth is perturbed by 1e-3."""
    ce, truth, good = "softmax_cross_entropy", 0.02215516, [0.02215516, 3.0996735]
    checks = []
    for adapter in ("torch", "tensorflow", "jax"):
        fields = {"got_values": good, "bound": 2e-7, "index": [0], "got": good[0]}
        if truth_ok:
            checks.append(_check(adapter, "ce", "api", "doc", ce, "float32", "value", "pass",
                                 truth=truth, truth_values=good, **fields))
        else:
            perturbed = [good[0] + 1e-3, good[1]]
            checks.append(_check(adapter, "ce", "api", "doc", ce, "float32", "value", "fail", ratio=5000.0,
                                 truth=perturbed[0], truth_values=perturbed, **fields))
    return {"checks": checks}


def test_agreement_flags_a_suspect_reference_when_frameworks_agree_against_the_truth():
    findings = analyze(_agreement_checks(truth_ok=False))
    assert [f["kind"] for f in findings] == ["suspect_reference"]
    assert findings[0]["adapters"] == ["jax", "tensorflow", "torch"]


def test_agreement_does_not_suspect_the_reference_on_the_modes_of_one_framework_alone():
    """Two modes of one adapter agreeing with each other are one witness, not two."""
    results = _agreement_checks(truth_ok=False)
    results["checks"] = results["checks"][:1] * 2
    results["checks"] = [dict(c, mode=m) for c, m in zip(results["checks"], ("eager", "jit"), strict=True)]
    (finding,) = analyze(results)
    assert finding["kind"] == "single_framework" and finding["adapters"] == ["torch@eager", "torch@jit"]
    results["checks"].append(_agreement_checks(truth_ok=False)["checks"][1])  # a second adapter agrees
    assert [f["kind"] for f in analyze(results)] == ["suspect_reference"]


def test_agreement_is_silent_when_frameworks_agree_with_the_truth():
    assert analyze(_agreement_checks(truth_ok=True)) == []


def test_agreement_needs_the_failing_frameworks_to_agree_with_each_other():
    results = _agreement_checks(truth_ok=False)
    results["checks"][0]["got_values"] = [0.5, 3.0996735]
    assert [f["kind"] for f in analyze(results)] == []


def test_agreement_attributes_a_lone_failure_to_its_framework():
    results = _agreement_checks(truth_ok=True)
    results["checks"][1].update(verdict="fail", got_values=[0.03, 3.0996735], ratio=9.0)
    findings = analyze(results)
    assert [(f["kind"], f["adapters"]) for f in findings] == [("single_framework", ["tensorflow"])]


def test_agreement_calls_a_failure_shared_when_another_framework_reproduces_the_truth():
    results = _agreement_checks(truth_ok=True)
    for c in results["checks"][:2]:
        c.update(verdict="fail", got_values=[0.03, 3.0996735])
    assert [f["kind"] for f in analyze(results)] == ["shared_deviation"]


def test_agreement_on_nan_against_a_finite_truth_is_a_shared_deviation_not_a_suspect_reference():
    results = _agreement_checks(truth_ok=False)
    for c in results["checks"]:
        c["got_values"] = ["nan", "inf"]
    assert [f["kind"] for f in analyze(results)] == ["shared_deviation"]
    results["checks"][0]["got_values"] = ["nan", "-inf"]
    assert analyze(results) == []


def test_analyze_rejects_what_is_not_results():
    with pytest.raises(TypeError, match="results"):
        analyze([])


# -- reproduction snippets ------------------------------------------------------------------------
def test_snippet_inlines_small_inputs_and_shows_the_implementation(results):
    check = next(c for c in results["checks"] if c["case"] == "edge_nan")
    code = snippet(results, check)
    compile(code, "<snippet>", "exec")
    assert "-inf" in code and "torch.nn.functional.cross_entropy(" in code
    assert "load_adapter('torch')" in code and "value_and_grad('softmax_cross_entropy'" in code
    assert "case_by_id" not in code


def test_snippet_rebuilds_large_inputs_from_the_case_id(results):
    check = next(c for c in results["checks"] if c["case"] == "rand_ce_003")
    code = snippet(results, check)
    compile(code, "<snippet>", "exec")
    assert "case_by_id('rand_ce_003', 7, 4)" in code
    assert ("Caution" in code) == (results["config"].get("random_group_size") != GROUP_SIZE)
    other = {**results, "config": {**results["config"], "random_group_size": GROUP_SIZE + 1}}
    assert f"in groups of {GROUP_SIZE + 1}, so a random case replayed here has other inputs" in snippet(other, check)
    edge = next(c for c in results["checks"] if not c["case"].startswith(("rand_", "doc")))
    assert "Caution" not in snippet(other, edge)  # edge cases do not depend on how random ones are drawn


def test_snippet_names_the_variant_truth(results):
    check = next(c for c in results["checks"] if c["verdict"] == "variant" and c["adapter"] == "torch")
    code = snippet(results, check)
    compile(code, "<snippet>", "exec")
    assert "variant='log_clamp_-100'" in code


def test_snippet_rejects_a_check_without_its_fields(results):
    with pytest.raises(ValueError, match="check"):
        snippet(results, {"id": "x"})


def _torch_ready() -> str | None:
    for module in ("torch", "lossconf.adapters.torch"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not available yet"
    import lossconf.reference

    if not hasattr(lossconf.reference, "value_and_grad"):
        return "lossconf.reference.value_and_grad is not available yet"
    return None


def test_snippet_runs_for_real_with_torch(results, tmp_path):
    reason = _torch_ready()
    if reason:
        pytest.skip(reason)
    check = next(c for c in results["checks"] if c["case"] == "doc001_rel1" and c["adapter"] == "torch")
    code = snippet(results, check)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = dict(line.split(":", 1) for line in done.stdout.splitlines() if ":" in line)
    # the document prints rel1= [ 0.02215516 3.09967351] (tensorflow, 8 decimals)
    for key in ("torch value", "reference value"):
        values = [float(v) for v in re.findall(r"[-+0-9.e]+", printed[key])]
        assert len(values) == 2
        assert math.isclose(values[0], 0.02215516, abs_tol=1e-6)
        assert math.isclose(values[1], 3.09967351, abs_tol=1e-6)


def test_renderers_reject_what_is_not_results(tmp_path):
    with pytest.raises(TypeError, match="results"):
        render_html({"checks": None}, tmp_path / "x.html")
    with pytest.raises(TypeError, match="results"):
        render_junit([], tmp_path / "x.xml")


def test_render_does_not_modify_results(results, tmp_path):
    before = copy.deepcopy(results)
    render_html(results, tmp_path / "r.html")
    render_junit(results, tmp_path / "r.xml")
    assert results == before


def test_method_states_the_seed_sweep_the_registry_was_verified_on(results, tmp_path):
    results["method"]["known_sweep"] = {"seeds": [0, 1, 2], "budget": 64, "versions": {"torch": "2.13.0+cpu"},
                                        "unexplained": {"torch": 0}, "known_reproduced": 3, "known_total": 4}
    _, page = _render(results, tmp_path)
    text = " ".join("".join(page.text).split())
    assert "Known deviations verified over 3 seeds (0–2, 64 random cases per loss" in text
    assert "on torch 2.13.0+cpu: 3 of 4 entries reproduced" in text


def test_matrix_shows_every_quantity_of_a_loss_with_several_gradients(results, tmp_path):
    """linear_cross_entropy's third quantity (d/dW) gets its own column under every dtype, labelled and
    explained; losses without it show those cells as not applicable, not as missing checks."""
    lce, api = "linear_cross_entropy", "torch.nn.functional.linear_cross_entropy"
    results["cases"].append({"id": "rand_lce_000", "loss": lce, "kind": "random", "shape": [4, 8],
                             "second_shape": [4], "params": {"reduction": "mean"}, "dtypes": None,
                             "provenance": {"seed": 7}, "note": "", "magnitude": 3.0, "first": None, "second": None})
    results["implementations"].append({"adapter": "torch", "name": "linear_cross_entropy", "loss": lce, "api": api,
                                       "dtypes": ["float32"], "params": [], "reductions": ["mean"], "variant": None,
                                       "composed": False, "grad": True, "note": "", "source": "F.linear_ce\n"})
    for quantity, verdict in (("value", "pass"), ("grad", "pass"), ("grad_linear_weight", "fail")):
        results["checks"].append(_check("torch", "linear_cross_entropy", api, "rand_lce_000", lce, "float32",
                                        quantity, verdict))
    results["summary"] = summarize(results["checks"])
    html, page = _render(results, tmp_path)
    dtype_heads = [a for t, a in page.tags if t == "th" and a.get("class") == "dtype"]
    assert len(dtype_heads) == 4 and all(a["colspan"] == "3" for a in dtype_heads)
    titles = [a.get("title") for t, a in page.tags if t == "th" and a.get("class") == "q"]
    assert titles.count("d loss / d linear_weight (grad_linear_weight)") == 4
    assert "grad W (d loss / d linear_weight)" in "".join(page.text)  # the loss's heading lists its quantities
    row = html[html.index('id="row-torch-linear_cross_entropy"'):]
    row = row[:row.index("</tr>")]
    assert row.count('data-worst="fail"') == 1 and 'class="cell na"' not in row
    ce_row = html[html.index('id="row-torch-cross_entropy-probs"'):]
    ce_row = ce_row[:ce_row.index("</tr>")]
    assert ce_row.count('class="cell na"') == 4  # one grad W cell per dtype
