"""Scale: the reference's softmax cross-entropy (value + gradient) on a large-vocabulary batch vs torch.

Both sides get the same float32 logits [ROWS, CLASSES] and int64 labels (seeded), reduction "mean":

- reference: ``lossconf.reference.numpy_ref.value_and_grad("sparse_softmax_cross_entropy", ...)``,
  evaluated in float64 row chunks (the gradient it returns is float64, twice the input's bytes);
- torch: ``torch.nn.functional.cross_entropy`` forward + ``backward`` (float32 gradient).

Each side runs in its own process (never two frameworks in one process, and peak RSS is per
process). A side reports wall time of the call and its peak RSS above the RSS it had once the
input existed ("extra"), and that extra minus the bytes of the arrays it returns ("working": what
the computation needs besides its results). Targets: reference time <= 3x torch, reference working
memory <= 25% of the input's bytes.

    python benchmarks/scale.py [--rows 4096] [--classes 131072] [--repeat 1]

``--loss linear_cross_entropy --hidden D`` measures the fused linear cross-entropy instead: float32 hidden
states [ROWS, D] and projection [CLASSES, D], reduction mean; sides ``reference`` (what a check computes:
value, both gradients and their error-model scales, streamed over the vocabulary), ``torch``
(F.linear_cross_entropy, options=None: logits materialised), ``torch_chunked`` (default
LinearCrossEntropyOptions()) and ``check`` (whole lossconf checks: case, worker call through shared
memory, truths, judging of the three quantities; wall time against the framework call's time measured
inside the worker; F.linear_cross_entropy computing the truths, then LinearCrossEntropyLoss sharing them,
as further implementations and modes of a run do). Outputs are the gradients (the reference's float64
gradients, float32 gradient scales: 3x torch's float32 gradient bytes); "working" is what each side needs
besides them. ``--sides reference,torch,check`` runs some of the sides (torch_chunked takes minutes at
--scale large sizes such as ``--rows 512 --hidden 1024 --classes 131072``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

GIB = float(1 << 30)


def _peak_rss() -> int:
    """Peak resident set size of this process so far, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _inputs(rows: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((rows, classes), dtype=np.float32)  # float32 directly: no float64 copy
    logits *= 4
    labels = rng.integers(0, classes, rows)
    return logits, labels


def _reference(logits: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
    from lossconf.reference.numpy_ref import value_and_grad

    value, grad = value_and_grad("sparse_softmax_cross_entropy", logits, labels, reduction="mean")
    return float(value), value.nbytes + grad.nbytes


def _torch(logits: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(logits).requires_grad_()  # shares the NumPy buffer: no copy
    loss = F.cross_entropy(x, torch.from_numpy(labels))
    loss.backward()
    return float(loss), x.grad.numel() * x.grad.element_size()


def _linear_inputs(rows: int, hidden: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((rows, hidden), dtype=np.float32)
    h[:, 0] = 1
    w = rng.standard_normal((classes, hidden), dtype=np.float32)
    w *= 3 / np.sqrt(hidden)  # logits of spread 3
    return h, w, rng.integers(0, classes, rows)


def _reference_linear(h: np.ndarray, w: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
    from lossconf.reference.numpy_ref import evaluate

    ref = evaluate("linear_cross_entropy", h, labels, linear_weight=w, reduction="mean")
    arrays = (ref.grad, ref.scale_grad, *ref.grads["grad_linear_weight"])
    return float(ref.value), sum(a.nbytes for a in arrays)


def _torch_linear(h: np.ndarray, w: np.ndarray, labels: np.ndarray, chunked: bool) -> tuple[float, int]:
    import torch
    import torch.nn.functional as F

    x, lw = torch.from_numpy(h).requires_grad_(), torch.from_numpy(w).requires_grad_()
    options = torch.nn.LinearCrossEntropyOptions() if chunked else None
    loss = F.linear_cross_entropy(x, lw, torch.from_numpy(labels), options=options)
    loss.backward()
    return float(loss), sum(g.numel() * g.element_size() for g in (x.grad, lw.grad))


def _check_linear(h: np.ndarray, w: np.ndarray, labels: np.ndarray) -> tuple[float, int, list]:
    """lossconf checks as the runner makes them: the case, a torch implementation in its worker (arrays
    through shared memory), the reference's truths, every quantity judged in columns. First
    F.linear_cross_entropy (its truths computed), then LinearCrossEntropyLoss on the same case (truths
    shared, as every further implementation and mode of a run shares them); a small warm-up check first
    pays imports and first calls. Returns (value, gradient bytes, [(check seconds, framework seconds)])."""
    from lossconf.adapters.loading import load_adapter
    from lossconf.cases import make_case
    from lossconf.reference import CATALOG
    from lossconf.supervisor import Worker
    from lossconf.verdicts import Truths, cast_inputs, judge_columns

    def check(impl: str, case, truths: Truths) -> tuple[float, float, float, int]:
        start = time.perf_counter()
        first, second, params = cast_inputs(case, "float32")
        value, grads, framework_seconds = worker.call(impl, "float32", first, second, params)
        verdicts = [judge_columns([case], "float32", q, got, truths)[0]
                    for q, got in zip(CATALOG["linear_cross_entropy"].quantities, (value, *grads), strict=True)]
        seconds = time.perf_counter() - start
        if not all(verdicts):
            raise SystemExit(f"{impl}: a quantity did not pass: {verdicts}")
        return seconds, framework_seconds, float(value), sum(g.nbytes for g in grads)

    def case(name: str, rows: int, classes: int):
        return make_case(name, "linear_cross_entropy", h[:rows], labels[:rows] % classes, kind="random",
                         params={"linear_weight": w[:classes], "reduction": "mean"})

    worker = Worker(load_adapter("torch").target, timeout=3600)
    try:
        worker.request(("describe",))  # started and loaded before the clock
        check("linear_cross_entropy", case("warm-up", 8, 64), Truths())
        big, truths = case("scale", len(h), len(w)), Truths()
        runs = [check(impl, big, truths) for impl in ("linear_cross_entropy", "LinearCrossEntropyLoss")]
    finally:
        worker.close()
    return runs[0][2], runs[0][3], [r[:2] for r in runs]


def linear_side(name: str, rows: int, hidden: int, classes: int, seed: int) -> dict:
    """One side of the linear_cross_entropy comparison in this process."""
    h, w, labels = _linear_inputs(rows, hidden, classes, seed)
    if name.startswith("torch"):
        import torch  # noqa: F401  (its own footprint is not the loss's)
    else:
        import lossconf.reference.numpy_ref  # noqa: F401
    baseline = _peak_rss()
    start = time.perf_counter()
    checks = None
    if name == "reference":
        value, out_bytes = _reference_linear(h, w, labels)
    elif name == "check":
        value, out_bytes, checks = _check_linear(h, w, labels)
    else:
        value, out_bytes = _torch_linear(h, w, labels, chunked=name == "torch_chunked")
    seconds = time.perf_counter() - start
    extra = _peak_rss() - baseline
    return {"side": name, "seconds": seconds, "value": value, "input_bytes": h.nbytes + w.nbytes,
            "extra_bytes": extra, "output_bytes": out_bytes, "working_bytes": extra - out_bytes,
            "checks": checks}


def side(name: str, rows: int, classes: int, seed: int) -> dict:
    """Run one side in this process and return its figures."""
    logits, labels = _inputs(rows, classes, seed)
    if name == "torch":
        import torch  # import before the baseline: the framework's own footprint is not the loss's

        torch.set_grad_enabled(True)
    else:
        import lossconf.reference.numpy_ref  # noqa: F401
    baseline = _peak_rss()
    start = time.perf_counter()
    value, out_bytes = (_torch if name == "torch" else _reference)(logits, labels)
    seconds = time.perf_counter() - start
    extra = _peak_rss() - baseline
    return {"side": name, "seconds": seconds, "value": value, "input_bytes": logits.nbytes,
            "extra_bytes": extra, "output_bytes": out_bytes, "working_bytes": extra - out_bytes}


def _run_side(name: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--side", name, "--rows", str(args.rows), "--classes", str(args.classes),
           "--seed", str(args.seed), "--loss", args.loss, "--hidden", str(args.hidden)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Both sides in separate processes, ``--repeat`` times each; prints a table and the two ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--classes", type=int, default=131072)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--loss", choices=("sparse_softmax_cross_entropy", "linear_cross_entropy"),
                        default="sparse_softmax_cross_entropy")
    parser.add_argument("--hidden", type=int, default=1024, help="D of linear_cross_entropy")
    parser.add_argument("--sides", default="torch,torch_chunked,reference,check",
                        help="linear_cross_entropy: the sides to run (torch_chunked is slow at large sizes)")
    parser.add_argument("--side", choices=("reference", "torch", "torch_chunked", "check"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        linear = args.loss == "linear_cross_entropy"
        print(json.dumps(linear_side(args.side, args.rows, args.hidden, args.classes, args.seed) if linear
                         else side(args.side, args.rows, args.classes, args.seed)))
        return
    if args.loss == "linear_cross_entropy":
        linear_main(args)
        return
    results = {name: [_run_side(name, args) for _ in range(args.repeat)] for name in ("torch", "reference")}
    size = args.rows * args.classes * 4 / GIB
    print(f"softmax CE value+grad, {args.rows} x {args.classes} float32 logits ({size:.2f} GiB), reduction mean")
    print(f"{'side':<10} {'seconds':>8} {'extra GiB':>10} {'outputs GiB':>12} {'working GiB':>12} {'value':>12}")
    best = {}
    for name, runs in results.items():
        for r in runs:
            print(f"{name:<10} {r['seconds']:8.2f} {r['extra_bytes'] / GIB:10.2f} {r['output_bytes'] / GIB:12.2f} "
                  f"{r['working_bytes'] / GIB:12.2f} {r['value']:12.6f}")
        best[name] = min(runs, key=lambda r: r["seconds"])
    ref, torch = best["reference"], best["torch"]
    print(f"time ratio reference / torch: {ref['seconds'] / torch['seconds']:.2f} (target <= 3)")
    print(f"reference working memory / input: {ref['working_bytes'] / ref['input_bytes']:.1%} (target <= 25%); "
          f"extra peak incl. its float64 gradient / input: {ref['extra_bytes'] / ref['input_bytes']:.1%}; "
          f"torch extra peak / input: {torch['extra_bytes'] / torch['input_bytes']:.1%}")
    print(f"values agree to {abs(ref['value'] - torch['value']) / abs(ref['value']):.2e} (relative)")


def linear_main(args: argparse.Namespace) -> None:
    """linear_cross_entropy: the three sides in separate processes; time and memory against torch."""
    sides = args.sides.split(",")
    unknown = set(sides) - {"torch", "torch_chunked", "reference", "check"}
    if unknown or "reference" not in sides:
        raise SystemExit(f"--sides: expected 'reference' and some of torch, torch_chunked, check; got {args.sides!r}")
    results = {name: min((_run_side(name, args) for _ in range(args.repeat)), key=lambda r: r["seconds"])
               for name in sides}
    print(f"linear_cross_entropy value + d/dh + d/dW, h [{args.rows}, {args.hidden}], W [{args.classes}, "
          f"{args.hidden}] float32 ({results['reference']['input_bytes'] / GIB:.2f} GiB), reduction mean")
    print(f"{'side':<14} {'seconds':>8} {'extra GiB':>10} {'outputs GiB':>12} {'working GiB':>12} {'value':>12}")
    for name, r in results.items():
        print(f"{name:<14} {r['seconds']:8.2f} {r['extra_bytes'] / GIB:10.2f} {r['output_bytes'] / GIB:12.2f} "
              f"{r['working_bytes'] / GIB:12.2f} {r['value']:12.6f}")
    ref = results["reference"]
    for name in ("torch", "torch_chunked"):
        if name not in results:
            continue
        r = results[name]
        print(f"reference / {name}: time {ref['seconds'] / r['seconds']:.2f}x, working memory "
              f"{ref['working_bytes'] / GIB:.2f} vs {r['working_bytes'] / GIB:.2f} GiB, extra peak "
              f"{ref['extra_bytes'] / GIB:.2f} vs {r['extra_bytes'] / GIB:.2f} GiB")
    if "check" not in results:
        return
    check = results["check"]
    for (seconds, framework), what in zip(check["checks"], ("F.linear_cross_entropy, truths computed",
                                                            "LinearCrossEntropyLoss, truths shared"), strict=True):
        print(f"check ({what}; case, torch worker through shared memory, judging): {seconds:.2f} s wall, "
              f"{seconds / framework:.2f}x the {framework:.2f} s of the framework call inside it (target <= 2x)")
    print(f"check process's extra peak {check['extra_bytes'] / GIB:.2f} GiB (the torch worker's own memory is "
          "torch's side)")


if __name__ == "__main__":
    main()
