"""JUnit XML from results.json: one <testcase> per check, one <testsuite> per adapter.

Verdict mapping: ``fail`` -> <failure>, ``error`` -> <error>, ``unsupported``/``skipped``/``known``
-> <skipped> (a registered deviation is an expected failure), ``pass``/``variant`` -> passed (a
variant is noted in <system-out>). Messages go through ElementTree, so they are escaped; characters
that XML 1.0 cannot carry at all are replaced. Elements and attributes follow the Ant JUnit schema
(https://raw.githubusercontent.com/windyroad/JUnit-Schema/master/JUnit.xsd), which CI systems read.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(s: object) -> str:
    return _NOT_XML.sub("\ufffd", str(s))


def _detail(check: dict) -> str:
    fields = ("truth", "got", "error", "ulps", "bound", "ratio", "kappa", "scale", "index")
    lines = [f"{check['id']}: {check.get('message', '')}"]
    lines += [f"{name} = {check.get(name)}" for name in fields if check.get(name) is not None]
    return _text("\n".join(lines))


def render_junit(results: dict, path: str | Path) -> Path:
    """Write the JUnit XML for ``results`` to ``path``; returns the path."""
    if not isinstance(results, dict) or not isinstance(results.get("checks"), list):
        raise TypeError("results: expected a results.json dict with a 'checks' list")
    path = Path(path)
    by_adapter: dict[str, list[dict]] = defaultdict(list)
    for check in results["checks"]:
        by_adapter[check["adapter"]].append(check)

    root = ET.Element("testsuites", name="lossconf")
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    total_time = 0.0
    for adapter, checks in sorted(by_adapter.items()):
        suite = ET.SubElement(root, "testsuite", name=_text(adapter))
        counts = dict.fromkeys(totals, 0)
        time = 0.0
        for check in checks:
            seconds = float(check.get("seconds") or 0.0)
            time += seconds
            case = ET.SubElement(
                suite, "testcase",
                classname=_text(f"{adapter}.{check['impl']}"),
                name=_text(f"{check['dtype']}-{check['case']}-{check['quantity']}"),
                time=f"{seconds:.6f}",
            )
            counts["tests"] += 1
            verdict = check["verdict"]
            message = _text(check.get("message") or verdict)
            if verdict == "fail":
                counts["failures"] += 1
                ET.SubElement(case, "failure", message=message, type="fail").text = _detail(check)
            elif verdict == "error":
                counts["errors"] += 1
                ET.SubElement(case, "error", message=message, type="error").text = _detail(check)
            elif verdict in ("unsupported", "skipped", "known"):
                counts["skipped"] += 1
                label = f"known deviation {check.get('known')}: " if verdict == "known" else f"{verdict}: "
                ET.SubElement(case, "skipped", message=_text(label) + message)
            elif verdict == "variant":
                ET.SubElement(case, "system-out").text = _text(f"conforms to variant {check.get('variant')}")
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", f"{time:.6f}")
        total_time += time
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{total_time:.6f}")

    ET.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path
