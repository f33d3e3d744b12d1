"""Detection rate of ``lossconf check-adapter`` on the bug zoo (``tests/bugzoo/zoo.py``).

Runs check-adapter on every zoo member (restricted to the broken loss, the member's budget), two at
a time, and prints a table: member, intended mistake, detected (exit status 1), the first failing
check, and the verdict counts. Writes the measurement to ``lossconf/bugzoo.json`` (committed data the
report's method section shows): ``{"members": [...], "detected": n, "total": n, "measured": date,
"lossconf_version": v}``; each member has ``name``, ``target``, ``loss``, ``mistake``, ``budget``,
``detected``, ``exit_status``, ``first_failure``, ``contract`` (counts per status) and ``verdicts``
(counts per verdict).

    python benchmarks/bug_zoo.py [--no-write] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "tests" / "bugzoo" / "zoo.py"
OUT = ROOT / "lossconf" / "bugzoo.json"
sys.path.insert(0, str(ZOO.parent))

from zoo import MEMBERS  # noqa: E402

from lossconf import __version__  # noqa: E402
from lossconf.results import load  # noqa: E402


def command(member: type, out: Path | None = None) -> list[str]:
    """The check-adapter command line for one zoo member."""
    cmd = [sys.executable, "-m", "lossconf.cli", "check-adapter", f"{ZOO}:{member.__name__}",
           "--losses", member.loss, "--budget", str(member.budget)]
    return cmd + (["--out", str(out)] if out else [])


def measure(member: type) -> dict:
    """Run check-adapter on ``member``; its detection record."""
    with tempfile.TemporaryDirectory(prefix="lossconf-zoo-") as tmp:
        proc = subprocess.run(command(member, Path(tmp)), capture_output=True, text=True, cwd=ROOT)
        contract = json.loads((Path(tmp) / "contract.json").read_text()) if proc.returncode != 2 else []
        results = load(Path(tmp) / "results.json") if proc.returncode != 2 else {}
    bad_contract = [c for c in contract if c["status"] in ("fail", "error")]
    checks = results.get("checks", [])
    bad = sorted((c for c in checks if c["verdict"] in ("fail", "error")),
                 key=lambda c: (not c["case"].startswith(("rand_", "doc")), c["id"]))
    first = bad_contract[0] if bad_contract else (bad[0] if bad else None)
    counts = {}
    for c in contract:
        counts[c["status"]] = counts.get(c["status"], 0) + 1
    return {
        "name": member.__name__, "target": f"tests/bugzoo/zoo.py:{member.__name__}", "loss": member.loss,
        "mistake": member.mistake, "budget": member.budget, "detected": proc.returncode == 1,
        "exit_status": proc.returncode,
        "first_failure": None if first is None else {"id": first["id"], "message": first["message"][:300]},
        "contract": counts,
        "verdicts": {v: n for v, n in results.get("summary", {}).get("by_verdict", {}).items() if n},
        "stderr": proc.stderr.strip().splitlines()[-1][:300] if proc.returncode == 2 and proc.stderr else "",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only; do not update lossconf/bugzoo.json")
    parser.add_argument("--jobs", type=int, default=2, help="members checked at once (default: 2)")
    args = parser.parse_args()
    with ThreadPoolExecutor(args.jobs) as pool:
        members = list(pool.map(measure, MEMBERS))
    width = max(len(m["name"]) for m in members)
    print(f"{'member':<{width}}  detected  first failing check / verdict counts")
    for m in members:
        first = m["first_failure"]["id"] if m["first_failure"] else "-"
        print(f"{m['name']:<{width}}  {'yes' if m['detected'] else 'NO':<8}  {first}")
        print(f"{'':<{width}}            mistake: {m['mistake']}")
        print(f"{'':<{width}}            contract {m['contract']}, conformance {m['verdicts']}")
    detected = sum(m["detected"] for m in members)
    print(f"\ndetected {detected} of {len(members)}")
    if not args.no_write:
        record = {"members": members, "detected": detected, "total": len(members),
                  "measured": date.today().isoformat(), "lossconf_version": __version__}
        OUT.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        print(f"written: {OUT.relative_to(ROOT)}")
    return 0 if detected == len(members) else 1


if __name__ == "__main__":
    sys.exit(main())
