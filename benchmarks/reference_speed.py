"""Time and peak memory of the reference on a large sparse softmax cross-entropy, against PyTorch.

Target (the runner's large case): ``evaluate("sparse_softmax_cross_entropy", logits [N, C] float32,
labels, reduction="mean")`` within 3x the time of ``torch.nn.functional.cross_entropy`` forward +
backward on the same array (torch in its own process, its default threads), and extra peak memory
(tracemalloc: everything NumPy allocates beyond the returned arrays) within 25 % of the input size.

    python benchmarks/reference_speed.py [--rows 512] [--classes 131072] [--repeats 3] [--no-torch]
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
import tracemalloc

import numpy as np


def make_inputs(rows: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits (float32, N(0, 3^2)) and labels, the same in every process for the same arguments."""
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((rows, classes), dtype=np.float32)
    logits *= 3
    return logits, rng.integers(0, classes, rows)


def torch_seconds(rows: int, classes: int, seed: int, repeats: int) -> float:
    """Best wall time of F.cross_entropy(x, y) forward + backward (run in a child process)."""
    import torch

    logits, labels = make_inputs(rows, classes, seed)
    y = torch.from_numpy(labels)
    best = np.inf
    for _ in range(repeats):
        x = torch.from_numpy(logits).requires_grad_(True)
        start = time.perf_counter()
        torch.nn.functional.cross_entropy(x, y, reduction="mean").backward()
        best = min(best, time.perf_counter() - start)
        del x
    return best


def reference_seconds(logits: np.ndarray, labels: np.ndarray, scales: bool, repeats: int) -> float:
    """Best wall time of the reference's evaluate."""
    from lossconf.reference import evaluate

    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        ref = evaluate("sparse_softmax_cross_entropy", logits, labels, reduction="mean", scales=scales)
        best = min(best, time.perf_counter() - start)
        del ref
    return best


def reference_extra_bytes(logits: np.ndarray, labels: np.ndarray, scales: bool) -> int:
    """Peak NumPy allocation during evaluate minus the bytes of the arrays it returns."""
    from lossconf.reference import evaluate

    tracemalloc.start()
    ref = evaluate("sparse_softmax_cross_entropy", logits, labels, reduction="mean", scales=scales)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    returned = sum(a.nbytes for a in (ref.value, ref.grad, ref.scale_value, ref.scale_grad) if a is not None)
    return peak - returned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--classes", type=int, default=131072)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-torch", action="store_true", help="time the reference only")
    args = parser.parse_args()

    torch_s = None
    if not args.no_torch:
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            torch_s = pool.apply(torch_seconds, (args.rows, args.classes, args.seed, args.repeats))
    logits, labels = make_inputs(args.rows, args.classes, args.seed)
    mib = logits.nbytes / 2**20
    print(f"sparse_softmax_cross_entropy, logits [{args.rows}, {args.classes}] float32 ({mib:.0f} MiB), mean")
    if torch_s is not None:
        print(f"  torch F.cross_entropy forward+backward: {torch_s:.3f} s")
    for scales in (True, False):
        seconds = reference_seconds(logits, labels, scales, args.repeats)
        extra = reference_extra_bytes(logits, labels, scales) / 2**20
        versus = f"  ({seconds / torch_s:.2f}x torch)" if torch_s else ""
        print(f"  reference evaluate(scales={scales}): {seconds:.3f} s{versus}; extra peak memory "
              f"{extra:.1f} MiB ({100 * extra / mib:.1f} % of the input)")


if __name__ == "__main__":
    main()
