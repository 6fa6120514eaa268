"""A child process that cleans up after itself when the process that started it dies.

Part of the runtime (:mod:`runtime`). Standard library only, so a child can arm the watch in
its first milliseconds, before it imports TensorFlow (which takes seconds, over twenty on a
busy machine, and holds the GIL for stretches): a parent killed meanwhile must not leave a
converter running on, or a folder of tens of megabytes in the temporary directory.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

#: The exit status of a child that stopped because its parent was gone.
ORPHANED_EXIT = 3


def is_orphaned(parent_pid: int) -> bool:
    """True once this process was re-parented (its parent ended).

    ``parent_pid`` must come from the parent itself (a command-line argument): by the time
    the child runs, the parent may be gone already and :func:`os.getppid` would name the
    adopter (init, a sub-reaper, or 0 when the adopter lies outside this PID namespace).
    """
    return os.getppid() != parent_pid


def leave(folder: Path | str) -> None:
    """Remove ``folder`` and end this process at once (no clean-up handlers: the main thread
    may be deep in native code that would not return for seconds)."""
    shutil.rmtree(folder, ignore_errors=True)
    os._exit(ORPHANED_EXIT)


def exit_with_parent(parent_pid: int, folder: Path | str, period_s: float = 0.5) -> threading.Thread:
    """Start a daemon thread that calls :func:`leave` on ``folder`` when the parent is gone.

    Checks at once, then every ``period_s`` seconds.
    """

    def watch() -> None:
        while True:
            if is_orphaned(parent_pid):
                leave(folder)
            time.sleep(period_s)

    thread = threading.Thread(target=watch, name="orphan-watch", daemon=True)
    thread.start()
    return thread
