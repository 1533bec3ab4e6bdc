"""Ctrl-C always stops a command, whatever it was doing when the key was pressed.

Python's default SIGINT handler raises KeyboardInterrupt wherever the main thread happens to be.
Where that is a ``__del__`` method, a weakref callback or an atexit hook (a DataLoader iterator
shutting its worker down, a file being finalized), CPython prints "Exception ignored" and carries
on: the Ctrl-C is lost (after a traceback) and the run would finish as if nothing had happened.
While a command runs, :func:`ctrl_c_stops` installs a handler that remembers the key press as well
as raising, and keeps such a swallowed KeyboardInterrupt from printing its traceback; the run checks
:func:`check` at every stage boundary and the CLI at the end, so a swallowed Ctrl-C still stops the
run (exit 130, finished work on disk) at the latest when the current stage ends.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_pressed = threading.Event()


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    _pressed.set()
    raise KeyboardInterrupt


@contextmanager
def ctrl_c_stops() -> Iterator[None]:
    """Within the block, a Ctrl-C raises KeyboardInterrupt *and* is remembered (:func:`pressed`)."""
    _pressed.clear()
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread; nothing to install from here
        return
    previous, previous_hook = signal.signal(signal.SIGINT, _on_sigint), sys.unraisablehook

    def quiet_when_remembered(unraisable: sys.UnraisableHookArgs) -> None:
        if not (issubclass(unraisable.exc_type, KeyboardInterrupt) and _pressed.is_set()):
            previous_hook(unraisable)

    sys.unraisablehook = quiet_when_remembered
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = previous_hook


def pressed() -> bool:
    """Whether Ctrl-C was pressed since the current command started."""
    return _pressed.is_set()


def check() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed (and its first KeyboardInterrupt was lost)."""
    if _pressed.is_set():
        raise KeyboardInterrupt
