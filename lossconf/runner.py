"""The runner: cases x implementations x dtypes x modes x {value, grad}, one worker process per framework.

- Each framework runs in its own worker (``lossconf.worker``; parent side ``lossconf.supervisor``); a
  thread here drives it. A call that raises becomes ``error`` for its checks; a call that hangs past
  ``timeout`` or kills its worker becomes ``error`` too, the worker is replaced, and the run goes on.
  Other frameworks never notice.
- Cases that share (loss, trailing shape, parameters) with ``reduction="none"`` are concatenated along
  the sample axis and evaluated in one framework call (samples are independent there), then split
  (``lossconf.jobs``); a batched call that raises, crashes, hangs or returns what does not split is
  retried case by case so failures are attributed to the cases causing them.
- Every judged check is appended to ``results.jsonl`` as soon as it exists (flushed), so a killed
  run keeps everything it had; ``resume`` skips what is already there. At the end ``results.json``
  (the documented schema) is written from the stream (``lossconf.stream``).
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from lossconf import __version__, capability
from lossconf.adapters.loading import load_adapter
from lossconf.cases import KINDS, Case, all_cases
from lossconf.header import case_json, documents, environment, method
from lossconf.invalid import run_invalid_job
from lossconf.jobs import Job, concat, job_order, make_jobs, signature
from lossconf.known import Known, adapter_known, load_known
from lossconf.random_cases import GROUP_SIZE
from lossconf.records import SCHEMA, slim
from lossconf.reference import CATALOG, DTYPES, VARIANTS
from lossconf.shard import select as select_shard
from lossconf.stream import ResultsStream, RunError, assemble, jsonsafe, read_stream, write_results
from lossconf.supervisor import Worker, WorkerFailure
from lossconf.truthcache import TruthCache, default_directory
from lossconf.verdicts import (
    Truths,
    apply_known,
    base_record,
    case_rows,
    check_id,
    judge,
    judge_columns,
    passing_record,
)

# tinygrad is left out of the default run: without clang it runs its PYTHON interpreter backend (about 19 min);
# the GPU-only fused kernels (liger, cut_cross_entropy, transformer_engine) skip with "needs CUDA" on CPU
DEFAULT_ADAPTERS = ("torch", "tensorflow", "jax", "paddle", "mlx", "onnxruntime", "scipy", "sklearn", "liger",
                    "cut_cross_entropy", "transformer_engine")
# what `lossconf run/report/list` cover by default (Keras 3 on JAX and torch run when named: their
# findings are not yet registered as known deviations)
CLI_ADAPTERS = DEFAULT_ADAPTERS
WORKER_LOGS = "workers"  # the folder of --out where each adapter's workers write their own output


@dataclass
class RunConfig:
    """What to run and where to write it."""

    out: Path
    adapters: tuple[str, ...] = DEFAULT_ADAPTERS
    losses: tuple[str, ...] | None = None
    dtypes: tuple[str, ...] = DTYPES
    modes: tuple[str, ...] = ("default",)  # mode names, "default" (each adapter's first) or "all"
    compile_shapes: int = 4  # shape signatures per (impl, dtype) in a mode an adapter bounds; 0: all
    kinds: tuple[str, ...] = KINDS
    seed: int = 0
    budget: int = 64
    timeout: float = 120.0
    batch: bool = True
    scale: str = "default"
    extra_cases: list[Case] = field(default_factory=list)
    shard: tuple[int, int] | None = None  # (i, n): run only shard i of n (lossconf.shard)

    def identity(self) -> dict:
        """The fields that must match for ``--resume``."""
        return {
            "adapters": list(self.adapters), "losses": sorted(self.losses or CATALOG), "dtypes": list(self.dtypes),
            "modes": list(self.modes), "compile_shapes": self.compile_shapes,
            "kinds": list(self.kinds), "seed": self.seed, "budget": self.budget, "scale": self.scale,
            "random_group_size": GROUP_SIZE,  # how the random cases were drawn: replays need the same
            **({"shard": list(self.shard)} if self.shard else {}),
        }


ProgressFn = Callable[[str, int], None]


def _noop(event: str, n: int) -> None:
    pass


@dataclass
class AdapterPlan:
    """One adapter after preparation: its worker, table, unsupported records and jobs to run."""

    name: str
    worker: Worker
    desc: dict
    jobs: list[Job]
    unsupported: list[dict]
    helpers: list[Worker] = field(default_factory=list)  # extra workers of a compile-bound adapter


class Run:
    """One conformance run: ``prepare`` (workers up, tables read, jobs planned), then ``execute``."""

    def __init__(self, config: RunConfig, progress: ProgressFn = _noop, resume: bool = False) -> None:
        self.config, self.progress, self.resume = config, progress, resume
        self.truths = Truths(disk=TruthCache(default_directory()))
        self.known: list[Known] = load_known()
        self.stream_path = Path(config.out) / "results.jsonl"
        self.records: dict[str, dict] = {}
        self.adapters: dict[str, dict] = {}
        self.plans: dict[str, AdapterPlan] = {}
        self.header: dict = {}
        self.stop = False
        self.threads: list[threading.Thread] = []
        self.timings: dict[str, float] = {}
        self.timings_lock = threading.Lock()
        self.planned = self.resumed = 0  # checks planned in this run / already done by a resumed one
        self.not_applicable: dict = {}  # "adapter:impl" -> {reason: count}: not checks (lossconf.capability)

    def prepare(self) -> list[AdapterPlan]:
        """Validate the config, build the cases, start one worker per adapter and plan its jobs."""
        cfg = self.config
        for loss in cfg.losses or ():
            if loss not in CATALOG:
                raise RunError(f"--losses: unknown loss {loss!r}; expected some of {sorted(CATALOG)}")
        for dtype in cfg.dtypes:
            if dtype not in DTYPES:
                raise RunError(f"--dtypes: unknown dtype {dtype!r}; expected some of {list(DTYPES)}")
        _check_modes(cfg)
        logs = Path(cfg.out) / WORKER_LOGS
        if not self.resume:
            shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir(parents=True, exist_ok=True)
        early = self._spawn_workers(cfg.adapters)  # frameworks import while the cases are drawn
        try:
            start = time.perf_counter()
            self.cases = all_cases(cfg.seed, cfg.budget, losses=cfg.losses, kinds=cfg.kinds) + cfg.extra_cases
            self.timings["cases"] = time.perf_counter() - start
            prior = self._load_prior() if self.resume else None
            self.stream = ResultsStream(self.stream_path, resume=prior is not None)
            if prior is None:
                self.header = self._header()
                self.stream.write("header", self.header)
        except BaseException:
            for _, w in early.values():
                w.close()
            raise
        start = time.perf_counter()
        self._parallel(lambda target: self._prepare_adapter(target, early.get(target)), cfg.adapters)
        self.timings["framework imports"] = time.perf_counter() - start
        return list(self.plans.values())

    def _spawn_workers(self, targets: list[str]) -> dict[str, tuple]:
        """target -> (adapter, spawned Worker) for each adapter that loads and is available; the others
        are left for ``_prepare_adapter`` to report."""
        early = {}
        for target in targets:
            try:
                adapter = load_adapter(target)
            except Exception:
                continue
            if adapter.available():
                continue
            w = Worker(adapter.target, self.config.timeout, log=self._worker_log(adapter.name))
            w.spawn()
            early[target] = (adapter, w)
        return early

    def execute(self) -> dict:
        """Run every planned job (preparing first if needed) and write results.json."""
        if not hasattr(self, "stream"):
            self.prepare()
        interrupted = False
        self.known_by_impl: dict[tuple[str, str], list[Known]] = {}
        try:
            for plan in self.plans.values():
                for rec in plan.unsupported:
                    self._emit(rec)
            self._parallel(self._run_adapter, list(self.plans))
        except KeyboardInterrupt:
            interrupted = self.stop = True
        finally:
            for plan in self.plans.values():
                for w in [plan.worker, *plan.helpers]:
                    w.close()  # an interrupted call fails at once; its checks stay unwritten
            for t in self.threads:
                t.join(10)
            self.stream.close()
        return self.finish(interrupted)

    def _parallel(self, fn: Callable[[str], None], names) -> None:
        threads = self.threads = [threading.Thread(target=fn, args=(n,), daemon=True) for n in names]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):  # join with a timeout so Ctrl-C reaches us
            for t in threads:
                t.join(0.2)

    def _header(self) -> dict:
        cfg = self.config
        return {
            "schema": SCHEMA, "lossconf_version": __version__,
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "seed": cfg.seed, "budget": cfg.budget, "config": self.config.identity(),
            "environment": environment(), "method": method(),
            "variants": {n: {"description": v.description, "citation": v.citation} for n, v in VARIANTS.items()},
            "known": [k.describe() for k in self.known],
            "cases": [case_json(c) for c in self.cases],
            "documents": documents(cfg.kinds, cfg.losses, self.cases),
        }

    def _load_prior(self) -> dict | None:
        if not self.stream_path.exists():
            return None
        prior = read_stream(self.stream_path)
        if prior["header"]["config"] != self.config.identity():
            raise RunError(
                f"--resume: {self.stream_path} was written with {prior['header']['config']}, "
                f"not {self.config.identity()}"
            )
        self.header = prior["header"]
        for a in prior["adapter"]:
            self.adapters[a["name"]] = a
        for c in prior["check"]:
            self.records[c["id"]] = c
        self.resumed = len(self.records)
        return prior

    # -- one adapter ---------------------------------------------------------------------------
    def _prepare_adapter(self, target: str, early: tuple | None = None) -> None:
        try:
            adapter, w = early or (load_adapter(target), None)
        except Exception as exc:
            self._adapter_problem(target, "failed_adapters", str(exc))
            return
        reason = adapter.available()
        if reason:
            self._adapter_problem(adapter.name, "skipped_adapters", reason)
            return
        try:
            self.known = self.known + adapter_known(adapter)  # a new list: other threads may be reading
        except ValueError as exc:
            self._adapter_problem(adapter.name, "failed_adapters", str(exc))
            if w is not None:
                w.close()
            return
        w = w or Worker(adapter.target, self.config.timeout, log=self._worker_log(adapter.name))
        try:
            w.start()
            desc = w.request(("describe",), timeout=600)
            reasons = w.request(("plan", [_case_plan(c) for c in self.cases], list(self.config.dtypes)), timeout=600)
        except WorkerFailure as exc:
            self._adapter_problem(adapter.name, "failed_adapters", str(exc))
            w.close()
            return
        jobs, unsupported = select_shard(
            adapter.name, *self._plan_jobs(desc, reasons, selected_modes(self.config.modes, desc.get("modes") or [""])),
            self.config.shard)
        if adapter.name not in self.adapters:
            self.adapters[adapter.name] = desc
            self.stream.write("adapter", desc)
        self.plans[adapter.name] = AdapterPlan(adapter.name, w, desc, jobs, unsupported)
        planned = sum(len(j.check_ids) for j in jobs) + len(unsupported)
        self.planned += planned
        self.progress("planned", planned)

    def _adapter_problem(self, name: str, key: str, reason: str) -> None:
        self.header.setdefault("environment", environment())[key][name] = reason
        self.stream.write("adapter", {"name": name, key: reason})

    def _plan_jobs(self, desc: dict, reasons: dict, modes: list[tuple[str, bool]]) -> tuple[list[Job], list[dict]]:
        name = desc["name"]
        jobs: list[Job] = []
        unsupported: list[dict] = []
        for impl in desc["implementations"]:
            impl_reasons = reasons.get(impl["name"], {})
            for mode, dtype in ((m, d) for m in modes for d in self.config.dtypes):
                runnable, ids = [], {}
                for case in self.cases:
                    if case.loss != impl["loss"] or (case.dtypes and dtype not in case.dtypes):
                        continue
                    why = impl_reasons.get(f"{case.id}|{dtype}")
                    pending = []
                    for q in CATALOG[impl["loss"]].quantities:
                        rec = base_record(case, name, impl, dtype, q, *mode)
                        if rec["id"] in self.records:
                            continue
                        na = capability.not_applicable(why, impl, q)
                        if na:
                            capability.tally(self.not_applicable, name, impl["name"], na)
                        elif why:
                            rec.update(verdict="unsupported", message=str(why))
                            unsupported.append(rec)
                        else:
                            pending.append(rec["id"])
                    if pending:
                        runnable.append(case)
                        ids[case.id] = pending
                mode_jobs = make_jobs(impl, dtype, runnable, ids, self.config.batch, mode)
                if mode[0] in desc.get("bounded_modes", ()) and self.config.compile_shapes:
                    mode_jobs = self._bound_shapes(desc, mode[0], mode_jobs)
                jobs += mode_jobs
        return job_order(jobs), unsupported

    def _bound_shapes(self, desc: dict, mode: str, jobs: list[Job]) -> list[Job]:
        """Keep the jobs of the ``compile_shapes`` shape signatures covering the most cases (each
        signature is one compilation); the rest are not planned, and the adapter's environment
        says how many checks of ``mode`` were left out."""
        groups: dict[tuple, list[Job]] = {}
        for job in jobs:
            groups.setdefault(signature(job), []).append(job)
        ranked = sorted(groups.values(), key=lambda g: -sum(len(j.cases) for j in g))
        kept = [j for g in ranked[: self.config.compile_shapes] for j in g]
        left = sum(len(j.check_ids) for g in ranked[self.config.compile_shapes:] for j in g)
        if left:
            flags = desc["environment"].setdefault("flags", {})
            key = f"{mode}_checks_left_out"
            flags[key] = str(int(flags.get(key, 0)) + left)
        return kept

    def _run_adapter(self, name: str) -> None:
        """Run the adapter's jobs on its worker(s): an adapter declaring ``workers = n`` (JAX: XLA
        compiles every new shape on one core) gets n processes pulling from one queue."""
        plan = self.plans[name]
        version = plan.desc["environment"]  # known entries read their package's version from it
        start = time.perf_counter()
        pending = iter(plan.jobs)
        lock = threading.Lock()

        def next_job() -> Job | None:
            with lock:
                return None if self.stop else next(pending, None)

        def guarded(job: Job, step, *args) -> bool:
            try:
                return step(*args)
            except Exception as exc:  # lossconf's own fault: recorded per check, the other jobs go on
                self._internal_error(job, name, exc)
                return True

        def drain(w: Worker) -> None:
            # Pipelined: the previous call's reply is judged here while the worker computes the next.
            ready: tuple[Job, tuple] | None = None
            while True:
                job = next_job()
                if job is not None and job.cases[0].kind == "invalid":  # judged as it runs: no overlap
                    if ready:
                        guarded(ready[0], self._judge_or_redo, w, *ready, name, version)
                        ready = None
                    guarded(job, self._run_job, w, job, name, version)
                    continue
                sent = self._submit(w, job) if job is not None else None
                judged = guarded(ready[0], self._judge, *ready, name, version) if ready else True
                reply = self._collect(w, sent) if job is not None else None
                if not judged:  # judging one case of the batch failed: redo them one by one
                    guarded(ready[0], self._one_by_one, w, ready[0], name, version)
                ready = None
                if job is None:
                    return
                if isinstance(reply, WorkerFailure):
                    guarded(job, self._failed, w, job, reply, name, version)
                else:
                    ready = (job, reply)

        plan.helpers = [Worker(plan.worker.target, self.config.timeout, log=self._worker_log(name, i))
                        for i in range(2, max(1, int(plan.desc.get("workers", 1))) + 1)]
        threads = [threading.Thread(target=drain, args=(w,), daemon=True) for w in plan.helpers]
        for t in threads:
            t.start()
        drain(plan.worker)
        for t in threads:
            t.join()
        for w in plan.helpers:
            w.close()
        self.timings[name] = time.perf_counter() - start

    def _run_job(self, w: Worker, job: Job, adapter: str, version: dict) -> None:
        """One job, call then judging, without overlap (invalid inputs are judged by their own rule)."""
        if job.cases[0].kind == "invalid":  # no truth: judged by lossconf.invalid's own rule
            first, second, params = concat(job)
            out = run_invalid_job(job.cases, job.impl, lambda c, q: base_record(c, adapter, job.impl, job.dtype, q),
                                  job.check_ids, lambda: w.call(job.impl["name"], job.dtype, first, second, params,
                                                                 mode=job.mode))
            if not self.stop:
                entries = self._entries(adapter, job.impl["name"])
                self._emit_all([apply_known(r, c, entries, version) for r, c in out])
            return
        reply = self._collect(w, self._submit(w, job))
        if isinstance(reply, WorkerFailure):
            self._failed(w, job, reply, adapter, version)
        else:
            self._judge_or_redo(w, job, reply, adapter, version)

    @staticmethod
    def _submit(w: Worker, job: Job) -> tuple | WorkerFailure:
        first, second, params = concat(job)
        try:
            return w.submit(job.impl["name"], job.dtype, first, second, params, mode=job.mode)
        except WorkerFailure as exc:
            return exc

    @staticmethod
    def _collect(w: Worker, sent: tuple | WorkerFailure) -> tuple | WorkerFailure:
        if isinstance(sent, WorkerFailure):
            return sent
        try:
            return w.collect(sent)
        except WorkerFailure as exc:
            return exc

    def _failed(self, w: Worker, job: Job, exc: WorkerFailure, adapter: str, version: dict) -> None:
        """A call that raised, hung or crashed: its checks are errors naming why."""
        if self.stop:  # interrupted by the user, not the adapter's fault: left for --resume
            return
        if len(job.cases) > 1:  # attribute the error, crash or hang to the case(s) causing it
            self._one_by_one(w, job, adapter, version)
            return
        for case in job.cases:
            for q in CATALOG[case.loss].quantities:
                rec = base_record(case, adapter, job.impl, job.dtype, q, job.mode, job.default_mode)
                if rec["id"] in job.check_ids:
                    rec["message"] = f"{exc.kind}: {exc}"
                    self._emit(apply_known(rec, case, self._entries(adapter, job.impl["name"]), version))

    def _judge_or_redo(self, w: Worker, job: Job, reply: tuple, adapter: str, version: dict) -> None:
        if not self._judge(job, reply, adapter, version):
            self._one_by_one(w, job, adapter, version)

    def _judge(self, job: Job, reply: tuple, adapter: str, version: dict) -> bool:
        """Judge one call's reply and emit its checks; False when judging failed on a batch of cases
        (they are then redone one by one, to pin the failure on its case)."""
        value, grad, seconds = reply
        flush = job.dtype in self.plans[adapter].desc.get("flush_dtypes", ())
        per_case = seconds / len(job.cases)
        with self.timings_lock:  # call time per mode: a compiled mode's first calls include compiling
            key = f"{adapter} {job.mode or 'default'} calls"
            self.timings[key] = self.timings.get(key, 0.0) + seconds
        wanted_ids = set(job.check_ids)
        # known deviations that could cover a check of this implementation (a passing check they
        # cover is tagged stale, so it takes the full path)
        entries = self._entries(adapter, job.impl["name"])
        out = []
        id_mode = "" if job.default_mode else job.mode
        quantities = CATALOG[job.impl["loss"]].quantities
        grads = grad if isinstance(grad, tuple) else (grad,) * (len(quantities) - 1)  # one per differentiable input
        for q, got in zip(quantities, (value, *grads), strict=True):
            wanted = [(i, c) for i, c in enumerate(job.cases)
                      if check_id(adapter, job.impl["name"], job.dtype, c.id, q, id_mode) in wanted_ids]
            if not wanted:
                continue
            try:
                comparisons = judge_columns(job.cases, job.dtype, q, got, self.truths)
                parts = None if got is None else case_rows(job.cases, np.asarray(got))
                for i, case in wanted:
                    if comparisons[i] is not None:
                        rec = passing_record(case, adapter, job.impl, job.dtype, q, comparisons[i], per_case,
                                             job.mode, job.default_mode)
                        if any(k.matches(adapter, rec["impl"], q, job.dtype, case.id, version, None, job.mode)
                               for k in entries):
                            full = base_record(case, adapter, job.impl, job.dtype, q, job.mode, job.default_mode)
                            rec = apply_known({**full, **rec}, case, entries, version)
                        out.append(slim(rec))
                        continue
                    rec = base_record(case, adapter, job.impl, job.dtype, q, job.mode, job.default_mode)
                    rec["seconds"] = per_case
                    if parts is None:
                        rec["message"] = "the adapter returned no gradient"
                    else:
                        judge(rec, case, job.impl, job.dtype, parts[i], self.truths, flush)
                    out.append(slim(jsonsafe(apply_known(rec, case, entries, version))))
            except Exception as exc:  # a reference problem must not end the run
                if len(job.cases) > 1:
                    return False
                rec = base_record(job.cases[0], adapter, job.impl, job.dtype, q, job.mode, job.default_mode)
                rec.update(seconds=per_case, message=f"judging failed: {exc!r}")
                out.append(slim(jsonsafe(apply_known(rec, job.cases[0], entries, version))))
        self._emit_all(out)
        return True

    def _worker_log(self, adapter: str, index: int = 1) -> Path:
        """The file worker ``index`` of ``adapter`` writes its own output to (``worker_output`` lists them)."""
        name = re.sub(r"[^\w.@-]", "_", adapter) + ("" if index == 1 else f"-{index}")
        return Path(self.config.out) / WORKER_LOGS / f"{name}.log"

    def _entries(self, adapter: str, impl: str) -> list[Known]:
        """The known deviations that can cover a check of this implementation, in registry order
        (apply_known tries each entry in turn: scanning all of them cost ~0.2 s per 1,000 checks)."""
        entries = self.known_by_impl.get((adapter, impl))
        if entries is None:
            entries = self.known_by_impl[adapter, impl] = [k for k in self.known
                                                           if k.adapter == adapter and k.impl in ("*", impl)]
        return entries

    def _internal_error(self, job: Job, adapter: str, exc: Exception) -> None:
        """Record every check of ``job`` as an error naming lossconf's own exception."""
        records = []
        for case in job.cases:
            for q in CATALOG[case.loss].quantities:
                rec = base_record(case, adapter, job.impl, job.dtype, q, job.mode, job.default_mode)
                if rec["id"] in job.check_ids and rec["id"] not in self.records:
                    rec["message"] = f"lossconf internal error while judging: {exc!r}"
                    records.append(slim(jsonsafe(rec)))
        self._emit_all(records)

    def _one_by_one(self, w: Worker, job: Job, adapter: str, version: dict) -> None:
        for case in job.cases:
            ids = [i for i in job.check_ids if f"-{case.id}-" in i]
            self._run_job(w, Job(job.impl, job.dtype, [case], ids, job.mode, job.default_mode), adapter, version)

    def _emit(self, record: dict) -> None:
        """Stream one full record (in its slim form)."""
        self._emit_all([slim(jsonsafe(record))])

    def _emit_all(self, records: list[dict]) -> None:
        """Stream slim, JSON-safe records and keep them for results.json."""
        if not self.stream.write_many("check", records):  # the run was interrupted and its stream closed
            return
        for r in records:
            self.records[r["id"]] = r
        self.progress("check", len(records))

    # -- the document ------------------------------------------------------------------------
    def finish(self, interrupted: bool) -> dict:
        """Assemble results.json from what was produced (complete or not) and write it."""
        results = assemble(self.header, list(self.adapters.values()), list(self.records.values()),
                           complete=not interrupted and not self.stop, interrupted=interrupted)
        self.timings["reference"] = self.truths.seconds
        results["truths"] = {"evaluated": self.truths.evaluated, "from_disk": self.truths.disk.hits}
        if self.truths.disk.stored:  # a run that added nothing cannot have pushed the cache past its bound
            self.truths.disk.trim()
        results["summary"]["planned"] = self.resumed + self.planned
        results["not_applicable"] = capability.summary(self.not_applicable)
        results["timings"] = {k: round(v, 3) for k, v in self.timings.items()}
        write_results(results, Path(self.config.out) / "results.json")
        return results


def selected_modes(requested: tuple[str, ...], declared: list[str]) -> list[tuple[str, bool]]:
    """The (mode, is-default) pairs of one adapter that ``requested`` selects: "all", "default" (its
    first mode) or mode names (those it does not declare are not its modes: nothing runs for them)."""
    if "all" in requested:
        names = declared
    else:
        names = [m for m in declared if m in requested or (m == declared[0] and "default" in requested)]
    return [(m, m == declared[0]) for m in names]


def _check_modes(cfg: RunConfig) -> None:
    """RunError unless every mode name in ``cfg.modes`` is declared by some adapter of the run."""
    declared = {"all", "default"}
    for target in cfg.adapters:
        try:
            declared.update(load_adapter(target).modes)
        except Exception:  # reported per adapter when it is prepared
            continue
    unknown = [m for m in cfg.modes if m not in declared]
    if unknown or not cfg.modes:
        names = sorted(declared - {"all", "default"})
        raise RunError(f"--modes: unknown modes {unknown}; expected all, default or some of {names}")


def _case_plan(case: Case) -> dict:
    return {"id": case.id, "loss": case.loss, "params": case.params, "shape": list(case.first.shape),
            "second_shape": None if case.second is None else list(case.second.shape)}


def worker_output(out: Path, tail: int = 0) -> list[str]:
    """Lines naming what the workers of the run in ``out`` printed (framework warnings and errors): each
    log that is not empty with its size, followed by its last ``tail`` lines."""
    lines = []
    for log in sorted((Path(out) / WORKER_LOGS).glob("*.log")):
        text = log.read_text(encoding="utf-8", errors="replace").splitlines()
        if text:
            lines.append(f"framework output: {log.stem}, {len(text)} line{'s' * (len(text) != 1)} ({log})")
            lines += [f"  {line}" for line in text[-tail:]] if tail else []
    return lines


def run(config: RunConfig, progress: ProgressFn = _noop, resume: bool = False) -> dict:
    """Run the conformance matrix described by ``config``; returns the results document."""
    return Run(config, progress, resume).execute()
