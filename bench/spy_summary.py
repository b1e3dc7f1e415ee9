"""Summarise a py-spy raw profile (`record --format raw`, e.g. from ab_burst.py's SPY=...).

    .venv/bin/python bench/spy_summary.py PROFILE.txt [TOP] [--thread TEXT]

Prints the share of samples per function, self and inclusive (each function counted once per
stack). --thread keeps only stacks that contain TEXT (e.g. "<module>" for the asyncio loop
thread, which runs from `python -m watcher`; "Thread.run" for worker threads).
"""

from __future__ import annotations

import re
import sys
from collections import Counter


def summarise(lines: list[str], top: int) -> list[str]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")[1:]  # the first entry names the thread
        total += count
        if frames:
            own[frames[-1]] += count
        for frame in {re.sub(r":\d+\)", ")", f) for f in frames}:
            inclusive[frame] += count
    if not total:
        return ["no samples"]
    out = [f"{total} samples", "", "self:"]
    out += [f"{c / total * 100:5.1f}% {f}" for f, c in own.most_common(top)]
    out += ["", "inclusive:"]
    out += [f"{c / total * 100:5.1f}% {f}" for f, c in inclusive.most_common(top)]
    return out


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    thread = None
    if "--thread" in argv:
        i = argv.index("--thread")
        thread = argv[i + 1]
        argv = argv[:i] + argv[i + 2 :]
    top = int(argv[1]) if len(argv) > 1 else 30
    with open(argv[0], encoding="utf-8") as f:
        lines = [line for line in f if thread is None or thread in line]
    print("\n".join(summarise(lines, top)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
