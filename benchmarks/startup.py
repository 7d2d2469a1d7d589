"""Start-up time of the `cstrack` command: how long `--help` takes before any work is done.

Prints the median wall time of 5 fresh processes for each of `cstrack --help`,
`cstrack eval --help` and `cstrack track --help` (run as `python -m cstrack`, with this Python, so a
PYTHONPATH pointing at another checkout measures that one). Figures only, no pass/fail.

    python benchmarks/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS: tuple[tuple[str, ...], ...] = (("--help",), ("eval", "--help"), ("track", "--help"))


def wall_time(args: tuple[str, ...]) -> float:
    """Seconds one `python -m cstrack ARGS` process takes from start to exit."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cstrack", *args], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="processes per command (default: %(default)s)")
    runs = parser.parse_args().runs
    for args in COMMANDS:
        times = [wall_time(args) for _ in range(runs)]
        print(
            f"cstrack {' '.join(args):<14} median {statistics.median(times):.3f} s "
            f"(min {min(times):.3f}, max {max(times):.3f}, {runs} runs)"
        )


if __name__ == "__main__":
    main()
