"""NMS speed on the CPU: ms per call of the OpenCV path (what `nms` uses there) and the torch path.

Candidates are what the detector hands NMS in a crowd: several jittered boxes around each of
candidates / 5 pedestrians in a 1088x608 input, random scores, IoU threshold 0.6, one label.
Each figure is the median of `--repeats` medians of `--runs` calls, after one untimed warm-up
call; both paths keep the same boxes, which is checked before timing.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/nms_speed.py [--counts 100 300 1000] [--repeats 7]
                                                            [--runs 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from cstrack.models.suppression import nms_opencv, nms_torch


def candidates(count: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """xyxy boxes (count, 4) clustered five to a pedestrian, and their scores."""
    g = torch.Generator().manual_seed(seed)
    people = max(1, count // 5)
    centre = torch.rand(people, 2, generator=g) * torch.tensor([1088.0, 608.0])
    size = torch.rand(people, 1, generator=g) * 80 + 40
    size = torch.cat((0.4 * size, size), 1)
    who = torch.randint(0, people, (count,), generator=g)
    jitter = 1 + torch.randn(count, 4, generator=g) * 0.08
    half = size[who] / 2
    boxes = torch.cat((centre[who] - half * jitter[:, :2], centre[who] + half * jitter[:, 2:]), 1)
    return boxes, torch.rand(count, generator=g)


def ms_per_call(call: Callable[[], torch.Tensor], repeats: int, runs: int) -> float:
    call()
    medians = []
    for _ in range(repeats):
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        medians.append(statistics.median(times))
    return 1000 * statistics.median(medians)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"ms per NMS call (median of {args.repeats} x {args.runs}; {args.threads} torch threads)")
    print(f"{'candidates':>10} {'kept':>6} {'opencv':>9} {'torch':>9} {'speed-up':>9}")
    for count in args.counts:
        boxes, scores = candidates(count)
        kept = nms_opencv(boxes, scores, 0.6, 1000)
        if not torch.equal(kept, nms_torch(boxes, scores, 0.6, 1000)):
            raise SystemExit(f"the paths disagree at {count} candidates")
        opencv = ms_per_call(lambda b=boxes, s=scores: nms_opencv(b, s, 0.6, 1000), args.repeats, args.runs)
        vectorised = ms_per_call(
            lambda b=boxes, s=scores: nms_torch(b, s, 0.6, 1000), args.repeats, args.runs
        )
        print(f"{count:>10} {len(kept):>6} {opencv:>9.3f} {vectorised:>9.3f} {vectorised / opencv:>8.1f}x")


if __name__ == "__main__":
    main()
