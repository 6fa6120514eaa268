"""Run `main.py` with a fault planted, for the fault tests (a subprocess, so it can be killed).

    python -m tests.robustness.fault_driver --marker M --pause-replace checkpoint.npz --nth 2 -- train ...
        the 2nd time a file named checkpoint.npz is about to be renamed into place (its
        temporary file complete), write M and sleep: the test kills the process there;
    python -m tests.robustness.fault_driver --marker M --fill-disk-after epoch --below last.keras -- train ...
        after the first "epoch" progress event, no file may grow beyond the current size of
        last.keras minus one byte (RLIMIT_FSIZE: writes fail with EFBIG, as on a full disk):
        the next write of that file, or anything larger, fails.

Atomic writers rename with ``os.replace``, so pausing there is pausing between "temporary file
written" and "target replaced".
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def pause_before_replace(name: str, nth: int, marker: Path) -> None:
    real_replace = os.replace
    seen = [0]

    def replace(src, dst, *args, **kwargs):
        if Path(dst).name == name:
            seen[0] += 1
            if seen[0] == nth:
                marker.write_text(str(src))
                time.sleep(3600)  # killed here
        return real_replace(src, dst, *args, **kwargs)

    os.replace = replace


def fill_disk_after(event: str, below: str, marker: Path) -> None:
    import resource
    import signal

    from trainer.run_files import ProgressLog

    real_emit = ProgressLog.emit
    done = [False]

    def emit(self, kind, **fields):
        real_emit(self, kind, **fields)
        if kind == event and not done[0]:
            done[0] = True
            limit = (self.path.parent / below).stat().st_size - 1
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
            marker.write_text(str(limit))

    ProgressLog.emit = emit


def main() -> int:
    argv = sys.argv[1:]
    split = argv.index("--")
    parser = argparse.ArgumentParser()
    parser.add_argument("--marker", required=True, type=Path)
    parser.add_argument("--pause-replace")
    parser.add_argument("--nth", type=int, default=1)
    parser.add_argument("--fill-disk-after")
    parser.add_argument("--below")
    args = parser.parse_args(argv[:split])
    if args.pause_replace:
        pause_before_replace(args.pause_replace, args.nth, args.marker)
    if args.fill_disk_after:
        fill_disk_after(args.fill_disk_after, args.below, args.marker)
    import main as app

    return app.main(argv[split + 1:])


if __name__ == "__main__":
    sys.exit(main())
