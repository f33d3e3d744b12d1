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
           "--seed", str(args.seed)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Both sides in separate processes, ``--repeat`` times each; prints a table and the two ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--classes", type=int, default=131072)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--side", choices=("reference", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(side(args.side, args.rows, args.classes, args.seed)))
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


if __name__ == "__main__":
    main()
