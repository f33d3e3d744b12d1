"""The full default report (``lossconf report``): wall clock and where it goes, with and without batching.

Runs the real command in a fresh process (framework imports included), then reads the breakdown the
run records in results.json ("timings": cases, framework imports, one entry per framework -- its
calls and the judging of its checks --, reference) and the rendering time the command prints.
Execution modes: the default report runs every mode each framework declares (``--modes all``); the run
with ``--modes default`` (one mode per framework) shows what the extra modes cost, and the timings'
"<adapter> <mode> calls" entries show the call time per mode (a compiled mode's first call per shape
signature includes compiling; with warm caches -- ~/.cache/lossconf/{torch,jax} -- that is tracing only).
The same run with ``--no-batch`` shows what batching buys; ``--adapters`` with one framework (the
others are then not imported) shows what the parallel workers buy against the sum of single runs.

    python benchmarks/full_report.py [--budget 64] [--adapters torch,tensorflow,jax] [--no-compare]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lossconf.runner import CLI_ADAPTERS

TARGET_SECONDS = 25.0  # warm default report on 2 cores (issue #11)


def report(out: Path, adapters: str, budget: int, extra: list[str]) -> dict:
    """Run ``lossconf report`` once; wall seconds, the run's timings, render seconds and verdict counts."""
    cmd = [sys.executable, "-m", "lossconf.cli", "report", "--out", str(out), "--adapters", adapters,
           "--budget", str(budget), *extra]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    results_path = out / "results.json"
    if not results_path.exists():
        raise SystemExit(f"lossconf report failed ({proc.returncode}): {proc.stderr[-2000:]}")
    results = json.loads(results_path.read_text(encoding="utf-8"))
    render = re.search(r"render ([0-9.]+) s", proc.stdout)
    return {"wall": wall, "status": proc.returncode, "timings": results.get("timings", {}),
            "render": float(render.group(1)) if render else float("nan"),
            "checks": results["summary"]["total"], "verdicts": results["summary"]["by_verdict"],
            "truths": results.get("truths", {}), "bytes": results_path.stat().st_size,
            "modes": {a: env.get("modes", []) for a, env in results.get("environment", {}).get("adapters", {}).items()}}


def extra_mode_calls(r: dict) -> tuple[float, float]:
    """(seconds of calls in each adapter's non-default modes, seconds of all calls): the "<adapter> <mode>
    calls" timings, summed over an adapter's parallel workers; a compiled mode's calls are mostly compiling."""
    calls = {name[: -len(" calls")]: t for name, t in r["timings"].items() if name.endswith(" calls")}
    extra = sum(t for key, t in calls.items()
                if key.rsplit(" ", 1)[-1] not in r["modes"].get(key.rsplit(" ", 1)[0], [""])[:1])
    return extra, sum(calls.values())


def show(title: str, r: dict) -> None:
    """Print one run's breakdown."""
    print(f"{title}: {r['wall']:.1f} s wall (exit {r['status']}), {r['checks']} checks")
    for name, seconds in r["timings"].items():
        print(f"  {name:<20} {seconds:8.2f} s")
    print(f"  {'rendering':<20} {r['render']:8.2f} s")
    extra, calls = extra_mode_calls(r)
    if calls:
        print(f"  calls in the non-default (compiled, op-by-op) modes: {extra:.1f} s of {calls:.1f} s of call time "
              f"({extra / calls:.0%}; summed over parallel workers, so it can exceed the wall time)")
    print(f"  verdicts: {', '.join(f'{v} {n}' for v, n in r['verdicts'].items() if n)}")
    print(f"  truths: {r['truths'].get('evaluated', '?')} evaluated, {r['truths'].get('from_disk', '?')} from the "
          f"cache; results.json {r['bytes'] / 1e6:.1f} MB")


def main() -> None:
    """Default report, then (unless --no-compare) the same without batching and each framework alone."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=64)
    parser.add_argument("--adapters", default=",".join(CLI_ADAPTERS), help="default: the report's default adapters")
    parser.add_argument("--no-compare", action="store_true", help="only the default run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lossconf-bench-") as tmp:
        default = report(Path(tmp) / "default", args.adapters, args.budget, [])
        show("default (batched, parallel workers)", default)
        verdict = "meets" if default["wall"] <= TARGET_SECONDS else "misses"
        print(f"target <= {TARGET_SECONDS:.0f} s: {verdict} it ({default['wall'] / TARGET_SECONDS:.2f}x the target)")
        one_mode = report(Path(tmp) / "one-mode", args.adapters, args.budget, ["--modes", "default"])
        show("--modes default (one mode per framework)", one_mode)
        print(f"extra execution modes cost {default['wall'] - one_mode['wall']:.1f} s "
              f"({default['checks'] - one_mode['checks']} more checks)")
        if args.no_compare:
            return
        unbatched = report(Path(tmp) / "no-batch", args.adapters, args.budget, ["--no-batch"])
        show("--no-batch", unbatched)
        print(f"batching saves {unbatched['wall'] - default['wall']:.1f} s "
              f"({unbatched['wall'] / default['wall']:.2f}x)")
        alone = {a: report(Path(tmp) / a, a, args.budget, []) for a in args.adapters.split(",")}
        serial = sum(r["wall"] for r in alone.values())
        for a, r in alone.items():
            print(f"  {a} alone: {r['wall']:.1f} s wall, {r['checks']} checks")
        print(f"parallel workers: {default['wall']:.1f} s vs {serial:.1f} s for the frameworks one after another "
              f"({serial / default['wall']:.2f}x)")


if __name__ == "__main__":
    main()
