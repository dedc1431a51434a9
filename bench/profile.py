"""Sampling profiles of the Samsyn processes while they work (``make bench BENCH_PROFILE=1``).

py-spy (from PyPI) samples the router and the API process from outside (no change to them) and
writes collapsed stacks; :func:`summary` turns them into the share of samples per function
(inclusive: the function is anywhere on the stack; self: it is the innermost frame).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path


class PySpy:
    def __init__(self, pids: dict[str, int], out: Path, rate: int = 97) -> None:
        self.pids = pids
        self.out = out
        self.rate = rate
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def __enter__(self) -> PySpy:
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.out.mkdir(parents=True, exist_ok=True)
        for name, pid in self.pids.items():
            self.procs[name] = subprocess.Popen(
                [
                    exe,
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    str(self.rate),
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--output",
                    str(self.out / f"{name}.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs.values():
            p.send_signal(signal.SIGINT)
        for p in self.procs.values():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _name(frame: str) -> str:
    """``func (path/to/module.py:123)`` -> ``module.py:func``."""
    func, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if parts else path
    return f"{short}:{func.strip()}"


def summary(path: Path, top: int = 15) -> dict[str, list[tuple[str, float]]]:
    """The functions with the largest inclusive and self share of the samples (percent)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    if not path.is_file():
        return {"inclusive": [], "self": []}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_name(f) for f in stack.split(";") if f and not f.startswith("process ")]
        frames = [f for f in frames if not f.startswith("thread ")]
        if not frames:
            continue
        total += n
        for f in set(frames):
            inclusive[f] += n
        own[frames[-1]] += n
    if not total:
        return {"inclusive": [], "self": []}
    return {
        "inclusive": [(f, round(100 * c / total, 1)) for f, c in inclusive.most_common(top)],
        "self": [(f, round(100 * c / total, 1)) for f, c in own.most_common(top)],
    }
