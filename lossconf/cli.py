"""The ``lossconf`` command line: report (the main job), run, render, merge, diff, check-adapter, list.

Every user error (unknown loss, dtype or adapter, malformed results file, unwritable output path,
bad option value) prints one line ``lossconf: error: ...`` and exits 2, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from lossconf import __version__

DEFAULT_OUT = Path("lossconf-out")


class UsageError(Exception):
    """A user error: printed as one line, exit status 2."""


def _csv(value: str) -> tuple[str, ...]:
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None


def _positive_float(value: str) -> float:
    try:
        out = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not out > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}")
    return out


def _add_run_options(p: argparse.ArgumentParser, modes: str) -> None:
    from lossconf.runner import CLI_ADAPTERS

    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    p.add_argument("--adapters", type=_csv, default=CLI_ADAPTERS,
                   help="comma-separated adapter names or targets (default: all built-ins)")
    p.add_argument("--losses", type=_csv, default=None, help="comma-separated loss ids (default: all)")
    p.add_argument("--dtypes", type=_csv, default=None, help="comma-separated dtypes (default: all four)")
    p.add_argument("--modes", type=_csv, default=(modes,),
                   help="execution modes: 'all' (every mode each adapter declares), 'default' (each "
                   "adapter's first) or names such as eager,compile,jit (default: " + modes + ")")
    p.add_argument("--compile-shapes", type=_int, default=4,
                   help="shape signatures per implementation and dtype in a slow-compiling mode such as "
                   "torch compile, the ones covering the most cases (0: all; default: %(default)s)")
    p.add_argument("--kinds", type=_csv, default=None, help="case kinds: document,edge,random,invalid (default: all)")
    p.add_argument("--seed", type=_int, default=0, help="seed of the random cases (default: 0)")
    p.add_argument("--budget", type=_int, default=64, help="random cases per loss (default: 64)")
    p.add_argument("--timeout", type=_positive_float, default=120.0, help="seconds per framework call")
    p.add_argument("--no-batch", action="store_true", help="one framework call per case (slower)")
    p.add_argument("--scale", choices=("default", "large"), default="default",
                   help="'large' adds large-vocabulary cases (1024 x 131072 logits)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="run only shard I of N (a deterministic split of the framework calls; merge the N results)")


def _config(args: argparse.Namespace):
    from lossconf.adapters.loading import AdapterLoadError, load_adapter
    from lossconf.reference import DTYPES
    from lossconf.runner import KINDS, RunConfig

    for target in args.adapters:
        try:
            load_adapter(target)
        except AdapterLoadError as exc:
            raise UsageError(f"--adapters: {exc}") from None
    if args.budget < 0:
        raise UsageError(f"--budget: expected a non-negative integer, got {args.budget}")
    if args.compile_shapes < 0:
        raise UsageError(f"--compile-shapes: expected a non-negative integer, got {args.compile_shapes}")
    if args.seed < 0:
        raise UsageError(f"--seed: expected a non-negative integer, got {args.seed}")
    unknown = [k for k in args.kinds or () if k not in KINDS]
    if unknown:
        raise UsageError(f"--kinds: unknown kinds {unknown}; expected some of {list(KINDS)}")
    from lossconf.shard import parse_shard

    try:
        shard = parse_shard(args.shard) if args.shard is not None else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    extra = []
    if args.scale == "large":
        from lossconf.cases import large_cases

        extra = large_cases(args.seed, args.losses)
    return RunConfig(
        out=args.out, adapters=args.adapters, losses=args.losses, dtypes=args.dtypes or DTYPES,
        modes=args.modes, compile_shapes=args.compile_shapes,
        kinds=args.kinds or KINDS, seed=args.seed, budget=args.budget, timeout=args.timeout,
        batch=not args.no_batch, scale=args.scale, extra_cases=extra, shard=shard,
    )


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".lossconf-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"--out: cannot write to {str(folder)!r}: {exc.strerror or exc}") from None


def _execute(config, resume: bool) -> dict:
    """Run with a progress bar; Ctrl-C keeps what was done (results marked incomplete)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from lossconf.runner import run

    columns = (TextColumn("[bold]checks"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("checks", total=None)
        planned = 0

        def progress(event: str, n: int) -> None:
            nonlocal planned
            if event == "planned":
                planned += n
                bar.update(task, total=planned)
            elif event == "check":
                bar.advance(task, n)

        return run(config, progress=progress, resume=resume)


def _summary_line(results: dict) -> str:
    s = results["summary"]
    counts = ", ".join(f"{n} {v}" for v, n in s["by_verdict"].items() if n)
    skipped = results["environment"].get("skipped_adapters", {})
    failed = results["environment"].get("failed_adapters", {})
    extra = "".join(f"; {a} skipped: {r}" for a, r in skipped.items())
    extra += "".join(f"; {a} FAILED to load: {r}" for a, r in failed.items())
    state = "" if results["complete"] else " (INCOMPLETE run)"
    return f"{s['total']} checks{state}: {counts or 'none'}{extra}"


def _print_worker_output(out: Path) -> None:
    from lossconf.runner import worker_output

    for line in worker_output(out):
        print(line)


def cmd_run(args: argparse.Namespace) -> int:
    """Run the matrix and write results.json (+ results.jsonl stream)."""
    _check_writable(args.out)
    results = _execute(_config(args), args.resume)
    print(_summary_line(results))
    _print_worker_output(args.out)
    print(f"results: {args.out / 'results.json'}")
    return 0 if results["complete"] else 130


def cmd_report(args: argparse.Namespace) -> int:
    """Run and render: the main job."""
    _check_writable(args.out)
    start = time.perf_counter()
    results = _execute(_config(args), args.resume)
    run_seconds = time.perf_counter() - start
    paths, render_seconds = _render(results, args.out)
    timings = results.get("timings", {})
    print(_summary_line(results))
    parts = [f"{k} {v:.1f} s" for k, v in timings.items()]
    print(f"time: run {run_seconds:.1f} s ({', '.join(parts)}), render {render_seconds:.1f} s, "
          f"total {time.perf_counter() - start:.1f} s")
    truths = results.get("truths", {})
    if truths:
        print(f"truths: {truths['evaluated']} evaluated by the reference, {truths['from_disk']} from the cache")
    _print_worker_output(args.out)
    print(f"report: {paths['html'].resolve()}")
    return 0 if results["complete"] else 130


def _render(results: dict, out: Path) -> tuple[dict, float]:
    from lossconf.reports.html import render_html
    from lossconf.reports.junit import render_junit

    start = time.perf_counter()
    paths = {"html": render_html(results, out / "report.html"), "junit": render_junit(results, out / "junit.xml")}
    return paths, time.perf_counter() - start


def load_results(path: Path) -> dict:
    """A results.json (or a results.jsonl stream of a partial run), validated; UsageError if malformed."""
    from lossconf.results import load

    try:
        return load(path)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such results file") from None
    except OSError as exc:  # a directory, no permission
        raise UsageError(f"{path}: cannot read the results file: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"{path}: not a valid lossconf results file: {exc}") from None


def cmd_render(args: argparse.Namespace) -> int:
    """Render an existing results.json to HTML and JUnit XML."""
    results = load_results(args.results)
    out = args.out or args.results.parent
    _check_writable(out)
    paths, _ = _render(results, out)
    print(f"report: {paths['html'].resolve()}")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    """Merge shards into one results.json; conflicting checks are reported, not overwritten."""
    from lossconf.results import merge, write

    shards = [load_results(p) for p in args.results]
    merged = merge(shards)
    _check_writable(args.out.parent)
    write(merged, args.out)
    conflicts = merged.get("merge", {}).get("conflicts", [])
    print(f"merged {len(shards)} shards: {merged['summary']['total']} checks -> {args.out}")
    for c in conflicts[:20]:
        print(f"conflict: {c['id']}: {c['verdicts']}")
    if len(conflicts) > 20:
        print(f"... and {len(conflicts) - 20} more conflicts")
    _print_contradictions(merged)
    return 1 if conflicts else 0


def _print_contradictions(results: dict) -> None:
    """Known deviations whose registered versions the merged builds contradict (see the report's trend)."""
    from lossconf.reports.trend import contradictions

    for line in contradictions(results):
        print(f"known-deviation range contradicted: {line}")


def cmd_sweep(args: argparse.Namespace) -> int:
    """One framework across versions: a uv environment per version, merged results, a trend report."""
    from lossconf.results import write
    from lossconf.runner import DEFAULT_ADAPTERS
    from lossconf.sweep import SweepError, build, combine, environment_for, parse_versions, run_version

    versions = parse_versions(args.framework, args.versions)
    if args.adapters != DEFAULT_ADAPTERS:
        raise UsageError("--adapters: a sweep runs the --framework adapter only")
    if args.constraints is not None and not args.constraints.is_file():
        raise UsageError(f"--constraints: no such file {str(args.constraints)!r}")
    args.adapters = (args.framework,)
    config = _config(args)
    _check_writable(args.out)
    done, results, failed = [], [], []
    for version in versions:
        env = environment_for(args.framework, version, args.with_ or ())
        try:
            build(env, args.constraints)
        except SweepError as exc:
            print(f"lossconf: {exc}", file=sys.stderr)
            failed.append(version)
            continue
        one = run_version(env, config, lambda c: _execute(c, args.resume))
        print(f"{args.framework} {version}: {_summary_line(one)}")
        if one["interrupted"]:
            return 130
        done.append(version)
        results.append(one)
    if not results:
        raise UsageError(f"--versions: no version could be installed ({', '.join(failed)})")
    merged = combine(args.framework, done, results)
    write(merged, args.out / "results.json")
    paths, _ = _render(merged, args.out)
    _print_contradictions(merged)
    print(f"results: {args.out / 'results.json'}")
    print(f"report: {paths['html'].resolve()}")
    return 1 if failed else 0


def cmd_diff(args: argparse.Namespace) -> int:
    """What changed between two results; exit 1 on new failures."""
    from lossconf.results import diff

    d = diff(load_results(args.old), load_results(args.new), args.threshold)
    for title, key in (("new failures", "new_failures"), ("fixed", "fixed"), ("drift", "drift"),
                       ("added checks", "added"), ("removed checks", "removed")):
        rows = d[key]
        print(f"{title}: {len(rows)}")
        for row in rows[: args.limit]:
            print(f"  {row}")
        if len(rows) > args.limit:
            print(f"  ... and {len(rows) - args.limit} more")
    return 1 if d["new_failures"] else 0


def cmd_list(args: argparse.Namespace) -> int:
    """Adapters, their versions, implementations and support."""
    from lossconf.adapters.loading import AdapterLoadError, load_adapter
    from lossconf.supervisor import Worker, WorkerFailure

    targets = args.adapters
    for target in targets:
        try:
            adapter = load_adapter(target)
        except AdapterLoadError as exc:
            raise UsageError(str(exc)) from None
        reason = adapter.available()
        if reason:
            print(f"{adapter.name}: not installed ({reason})\n")
            continue
        w = Worker(adapter.target, timeout=300)
        try:
            desc = w.request(("describe",))
        except WorkerFailure as exc:
            print(f"{adapter.name}: failed to load: {exc}\n")
            continue
        finally:
            w.close()
        env = desc["environment"]
        flags = ", ".join(f"{k}={v}" for k, v in env.get("flags", {}).items())
        print(f"{adapter.name} {env.get('version', '')} on {env.get('device', '')}" + (f" ({flags})" if flags else ""))
        print(f"  modes: {', '.join(desc.get('modes', []))} (default {desc.get('modes', ['?'])[0]})")
        for impl in desc["implementations"]:
            extras = [f"variant={impl['variant']}"] if impl["variant"] else []
            extras += ["composed"] if impl["composed"] else []
            extras += [] if impl["grad"] else ["no grad"]
            params = ",".join(impl["params"]) or "-"
            print(f"  {impl['name']:<44} {impl['loss']:<30} {impl['api']}")
            print(f"  {'':<44} dtypes={','.join(impl['dtypes'])} reductions={','.join(impl['reductions'])} "
                  f"params={params} {' '.join(extras)}")
        print()
    return 0


def cmd_sweep_seeds(args: argparse.Namespace) -> int:
    """The matrix over many seeds, one run per seed; exit 1 when any fail or error is unexplained."""
    from dataclasses import replace

    from lossconf.results import load
    from lossconf.seed_sweep import SeedSweep, format_sweep, parse_seeds

    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    args.seed, args.scale, args.no_batch, args.shard = seeds[0], "default", False, None
    config = _config(args)
    _check_writable(args.out)
    sweep = SeedSweep(seeds)
    for i, seed in enumerate(seeds):
        # document and edge cases do not depend on the seed: they run with the first seed only
        kinds = config.kinds if i == 0 else tuple(k for k in config.kinds if k == "random")
        if not kinds:
            continue
        seed_config = replace(config, out=args.out / f"seed-{seed}", seed=seed, kinds=kinds)
        done = seed_config.out / "results.json"
        results = load(done) if args.resume and done.exists() else None
        if results is None or not results["complete"] or results.get("config") != seed_config.identity():
            results = _execute(seed_config, resume=args.resume)
        if results["interrupted"]:
            print(f"interrupted at seed {seed}: {_summary_line(results)}; --resume continues the sweep")
            return 130
        sweep.add(results, seed)
        del results  # one seed's records at a time
        print(f"seed {seed} ({i + 1}/{len(seeds)}): {sum(len(r) for r in sweep.unexplained.values())} "
              f"unexplained so far", flush=True)
    summary = sweep.summary()
    (args.out / "sweep.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    # commit known_sweep.json as lossconf/known_sweep.json: the report's method section states it
    (args.out / "known_sweep.json").write_text(json.dumps(sweep.record(), indent=1), encoding="utf-8")
    print(format_sweep(summary))
    print(f"sweep: {args.out / 'sweep.json'}")
    return 1 if summary["unexplained"] or not sweep.complete else 0


def cmd_check_adapter(args: argparse.Namespace) -> int:
    """Contract battery + conformance matrix for one adapter; 0 conforms, 1 not, 2 cannot load."""
    from lossconf.check_adapter import check_adapter

    return check_adapter(args)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump), exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and documentation)."""
    from lossconf.runner import CLI_ADAPTERS

    parser = _Parser(prog="lossconf", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"lossconf {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("report", help="run the conformance matrix and render the HTML report (main job)")
    _add_run_options(p, "all")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("run", help="run the conformance matrix, write results.json")
    _add_run_options(p, "default")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("render", help="render results.json to report.html and junit.xml")
    p.add_argument("results", type=Path)
    p.add_argument("--out", type=Path, default=None, help="output folder (default: beside results.json)")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("merge", help="merge results shards from several machines")
    p.add_argument("results", type=Path, nargs="+")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT / "merged.json")
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser("sweep", help="one framework across versions (a uv environment each) with a trend report")
    p.add_argument("--framework", required=True, help="adapter to sweep: jax, torch, tensorflow or paddle")
    p.add_argument("--versions", required=True, help="comma-separated framework versions, e.g. 0.4.38,0.6.2,0.10.2")
    p.add_argument("--with", dest="with_", type=_csv, default=None,
                   help="extra requirements for every environment, e.g. 'optax==0.2.5' or 'numpy<2'")
    p.add_argument("--constraints", type=Path, default=None,
                   help="a pip constraints file passed to uv (e.g. torch==2.5.1+cpu with UV_INDEX_URL set)")
    _add_run_options(p, "default")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("diff", help="compare two results; exit 1 on new failures")
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    p.add_argument("--threshold", type=_positive_float, default=2.0,
                   help="report error/bound drifts by more than this factor (default: 2)")
    p.add_argument("--limit", type=_int, default=50, help="rows shown per section")
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("sweep-seeds", help="the matrix over many seeds: unexplained fails, known deviations per seed")
    p.add_argument("--seeds", default="0-19", help="seeds, e.g. 0-19 or 0,3,5-7 (default: %(default)s)")
    run_options = argparse.ArgumentParser(add_help=False)
    _add_run_options(run_options, "default")
    for flag in ("--out", "--adapters", "--losses", "--dtypes", "--modes", "--compile-shapes", "--kinds", "--budget",
                 "--timeout", "--resume"):
        p._add_action(next(a for a in run_options._actions if flag in a.option_strings))
    p.set_defaults(func=cmd_sweep_seeds)

    p = sub.add_parser("check-adapter", help="contract battery and conformance matrix for one adapter")
    p.add_argument("target", help="adapter name, package.module:Attr or path/to/file.py:Attr")
    p.add_argument("--losses", type=_csv, default=None)
    p.add_argument("--dtypes", type=_csv, default=None)
    p.add_argument("--budget", type=_int, default=16, help="random cases per loss (default: 16)")
    p.add_argument("--seed", type=_int, default=0)
    p.add_argument("--timeout", type=_positive_float, default=120.0)
    p.add_argument("--out", type=Path, default=None, help="also write results.json and report.html here")
    p.set_defaults(func=cmd_check_adapter)

    p = sub.add_parser("list", help="adapters, versions, implementations and what they support")
    p.add_argument("--adapters", type=_csv, default=CLI_ADAPTERS)
    p.set_defaults(func=cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lossconf`` console script."""
    from lossconf.stream import RunError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, RunError) as exc:
        print(f"lossconf: error: {exc}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(f"lossconf: error: malformed JSON: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lossconf: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
