"""``lossconf check-adapter TARGET``: the contract battery, then the conformance matrix, for one adapter.

Exit status: 0 when everything conforms (variants and known deviations allowed), 1 when a contract
check or a conformance check fails or errors (or the run is incomplete), 2 when the target cannot be
loaded (bad name or path, the framework is not installed, or the worker fails to load it).

An adapter may carry its own known deviations: a class attribute ``known_deviations`` naming a TOML
file in the format of ``lossconf/known/*.toml`` (a relative path is relative to the adapter's
module); its entries apply to this adapter.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from lossconf.adapters.loading import AdapterLoadError, load_adapter
from lossconf.contract import ContractBattery, ContractCheck, battery_summary
from lossconf.reference import DTYPES
from lossconf.runner import Run, RunConfig
from lossconf.supervisor import WorkerFailure
from lossconf.testing import explain

SHOWN = 12  # failures explained in full per part; the rest are listed by id
BAD = ("fail", "error")


class LoadFailure(Exception):
    """The target cannot be loaded: one line, exit status 2."""


def prepare(target: str, *, losses=None, dtypes=None, budget: int = 16, seed: int = 0,
            timeout: float = 120.0, out: Path) -> tuple[Run, ContractBattery]:
    """Load ``target``, start its worker, plan the conformance run and the contract battery.

    LoadFailure when the target cannot be loaded; RunError for a bad loss or dtype.
    """
    try:
        adapter = load_adapter(target)
    except AdapterLoadError as exc:
        raise LoadFailure(str(exc)) from None
    reason = adapter.available()
    if reason:
        raise LoadFailure(f"adapter {adapter.name!r} cannot run here: {reason}")
    config = RunConfig(out=out, adapters=(target,), losses=tuple(losses) if losses else None,
                       dtypes=tuple(dtypes or DTYPES), seed=seed, budget=budget, timeout=timeout)
    run = Run(config)
    run.prepare()
    failed = run.header["environment"]["failed_adapters"]
    if adapter.name not in run.plans:
        why = failed.get(adapter.name) or failed.get(target) or "no worker"
        raise LoadFailure(f"adapter {adapter.name!r} failed to load in its worker process: {why}; expected "
                          "load() and implementations() to run without raising")
    plan = run.plans[adapter.name]
    try:
        battery = ContractBattery(plan.worker, plan.desc, config.dtypes, losses=config.losses, seed=seed,
                                  target=target, known=run.known)
    except WorkerFailure as exc:
        plan.worker.close()
        raise LoadFailure(f"adapter {adapter.name!r}: planning the contract battery failed: {exc}") from None
    return run, battery


def check_adapter(args) -> int:
    """Run the contract battery and the conformance matrix for ``args.target``; 0, 1 or 2."""
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="lossconf-check-"))
    try:  # the temporary folder goes on every path out, a failed load included
        try:
            run, battery = prepare(args.target, losses=args.losses, dtypes=args.dtypes, budget=args.budget,
                                   seed=args.seed, timeout=args.timeout, out=out)
        except LoadFailure as exc:
            print(f"lossconf: error: {exc}", file=sys.stderr)
            return 2
        contract = battery.run()
        results = run.execute()
        print_report(results, contract, battery.adapter)
        if args.out:
            write_outputs(results, contract, out)
    finally:
        _framework_output(out, kept=bool(args.out))
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)
    return exit_status(results, contract)


def _framework_output(out: Path, kept: bool) -> None:
    """What the adapter's workers printed, on stderr: where it is kept, with its last lines when the run's
    folder is temporary."""
    from lossconf.runner import worker_output

    for line in worker_output(out, tail=0 if kept else 40):
        print(line, file=sys.stderr)


def exit_status(results: dict, contract: list[ContractCheck]) -> int:
    """0 when every contract check passed (or was skipped) and no check failed or erred, else 1.

    An adapter with nothing to check (an empty table, or --losses it does not implement) is 1 too.
    """
    if not contract and not results["checks"]:
        return 1
    bad_contract = any(c.status in BAD for c in contract)
    bad_checks = any(c["verdict"] in BAD for c in results["checks"])
    return 1 if bad_contract or bad_checks or not results["complete"] else 0


def print_report(results: dict, contract: list[ContractCheck], adapter: str) -> None:
    """The summary table, then every contract and conformance failure with its explanation."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160, highlight=False)
    verdicts = ("pass", "variant", "known", "fail", "error", "unsupported")
    table = Table(title=f"lossconf check-adapter: {adapter}", show_lines=False)
    for col in ("implementation", "loss", "dtype", "contract", *verdicts):
        table.add_column(col, justify="left" if col in ("implementation", "loss", "dtype", "contract") else "right")
    rows: dict[tuple, dict] = {}
    for c in contract:
        row = rows.setdefault((c.impl, c.loss, c.dtype), {"contract": Counter(), "checks": Counter()})
        row["contract"][c.status] += 1
    for c in results["checks"]:
        row = rows.setdefault((c["impl"], c["loss"], c["dtype"]), {"contract": Counter(), "checks": Counter()})
        row["checks"][c["verdict"]] += 1
    order = {d: i for i, d in enumerate(DTYPES)}
    for (impl, loss, dtype), row in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0], order[kv[0][2]])):
        cc = row["contract"]
        contract_text = ", ".join(f"{n} {s}" for s, n in cc.items()) or "-"
        style = "red" if any(row["checks"][v] for v in BAD) or any(cc[s] for s in BAD) else None
        table.add_row(impl, loss, dtype, contract_text, *(str(row["checks"][v] or "") for v in verdicts), style=style)
    console.print(table)

    bad_contract = [c for c in contract if c.status in BAD]
    for c in bad_contract[:SHOWN]:
        console.print(f"\n{c.id}: CONTRACT {c.status.upper()} - {c.message}", markup=False)
        if c.reproduce:
            console.print("  reproduce:\n" + "\n".join("    " + s for s in c.reproduce.splitlines()), markup=False)
    _more(console, bad_contract)
    bad_checks = sorted((c for c in results["checks"] if c["verdict"] in BAD), key=_severity)
    for c in bad_checks[:SHOWN]:
        console.print("\n" + explain(results, c), markup=False)
    _more(console, bad_checks)

    counts = battery_summary(contract)
    by_verdict = results["summary"]["by_verdict"]
    console.print(
        "\ncontract: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + f" (of {len(contract)})"
        + "\nconformance: " + ", ".join(f"{n} {v}" for v, n in by_verdict.items() if n)
        + f" (of {results['summary']['total']})" + ("" if results["complete"] else " INCOMPLETE"),
        markup=False,
    )
    status = exit_status(results, contract)
    failing = sorted({c.loss for c in bad_contract} | {c["loss"] for c in bad_checks})
    verdict = "CONFORMS" if status == 0 else "DOES NOT CONFORM (losses: " + ", ".join(failing) + ")"
    if not contract and not results["checks"]:
        verdict = "NOTHING CHECKED (no implementation of the selected losses)"
    console.print(f"{adapter}: {verdict}", markup=False)


def _severity(check: dict) -> tuple:
    """Random and document cases first (their failures are the telling ones), then by id."""
    kind = 0 if check["case"].startswith(("rand_", "doc")) else 1
    return (kind, check["id"])


def _more(console, bad: list) -> None:
    if len(bad) > SHOWN:
        rest = bad[SHOWN:]
        ids = [c.id if isinstance(c, ContractCheck) else c["id"] for c in rest]
        console.print(f"\n... and {len(rest)} more: " + ", ".join(ids[:40]) + (" ..." if len(ids) > 40 else ""),
                      markup=False)


def write_outputs(results: dict, contract: list[ContractCheck], out: Path) -> dict[str, Path]:
    """results.json (already written by the run), contract.json, report.html and junit.xml in ``out``."""
    from lossconf.reports.html import render_html
    from lossconf.reports.junit import render_junit

    paths = {"results": out / "results.json", "contract": out / "contract.json"}
    paths["contract"].write_text(json.dumps([c.describe() for c in contract], indent=1), encoding="utf-8")
    paths["junit"] = render_junit(results, out / "junit.xml")
    _add_contract_suite(paths["junit"], contract)
    try:
        paths["html"] = render_html(results, out / "report.html")
    except Exception as exc:  # a rendering bug must not hide the verdicts already printed
        print(f"lossconf: warning: rendering report.html failed: {exc!r}", file=sys.stderr)
    return paths


def _add_contract_suite(path: Path, contract: list[ContractCheck]) -> None:
    """Append the contract checks to the JUnit file as one more <testsuite>."""
    tree = ET.parse(path)
    root = tree.getroot()
    suite = ET.SubElement(root, "testsuite", name="contract")
    counts = Counter()
    for c in contract:
        case = ET.SubElement(suite, "testcase", classname=f"contract.{c.adapter}.{c.impl}",
                             name=f"{c.dtype}-{c.check}", time="0")
        counts["tests"] += 1
        if c.status == "fail":
            counts["failures"] += 1
            ET.SubElement(case, "failure", message=c.message[:500]).text = c.message + "\n" + c.reproduce
        elif c.status == "error":
            counts["errors"] += 1
            ET.SubElement(case, "error", message=c.message[:500]).text = c.message
        elif c.status == "skipped":
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", message=c.message[:500])
    for key in ("tests", "failures", "errors", "skipped"):
        suite.set(key, str(counts[key]))
        root.set(key, str(int(root.get(key, "0")) + counts[key]))
    tree.write(path, encoding="utf-8", xml_declaration=True)
