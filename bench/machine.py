"""The machine's load, for every bench: printed beside the figures, and waited out when asked."""

from __future__ import annotations

import os
import sys
import time


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, as "0.52 0.61 0.70"."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def wait_for_quiet(threshold: float, patience: float) -> None:
    """Wait (at most *patience* s) until the 1-minute load average is below *threshold*: others share the machine."""
    if threshold <= 0:
        return
    deadline = time.monotonic() + patience
    while os.getloadavg()[0] >= threshold and time.monotonic() < deadline:
        print(f"waiting for a quieter machine: load average {load_average()}", file=sys.stderr, flush=True)
        time.sleep(30)
