"""A Ctrl-C that CPython swallows (its KeyboardInterrupt raised inside a ``__del__``) still stops a
command, and prints no "Exception ignored" traceback."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from trecs_eval import interrupt
from trecs_eval.harness import _stage


class CtrlCWhileFinalized:
    """Sends SIGINT to this process while CPython runs its ``__del__``: the handler's
    KeyboardInterrupt is raised inside the finalizer, where CPython ignores it."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # bytecode after the kill: the Python-level handler runs in here
            pass


def swallowed_ctrl_c() -> None:
    CtrlCWhileFinalized()  # finalized at once: the KeyboardInterrupt does not get out of here


def test_a_swallowed_ctrl_c_is_remembered_and_stops_the_command(monkeypatch) -> None:
    reported: list[object] = []  # what would print "Exception ignored ... Traceback"
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    with pytest.raises(KeyboardInterrupt), interrupt.ctrl_c_stops():
        swallowed_ctrl_c()
        assert interrupt.pressed()  # the command went on: the interrupt was swallowed
        interrupt.check()
    assert reported == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_a_stage_that_swallowed_a_ctrl_c_stops_the_run_when_it_ends(caplog) -> None:
    timings: dict[str, float] = {}
    hint = "trecs-eval run C"
    with pytest.raises(KeyboardInterrupt), interrupt.ctrl_c_stops(), _stage("generate", timings, hint):
        swallowed_ctrl_c()
    assert "generate" not in timings  # the stage is not recorded as done
    assert "run stopped during stage 'generate'" in caplog.text


class RaisesWhileFinalized:
    def __del__(self) -> None:
        raise ValueError("not a Ctrl-C")


def test_other_swallowed_errors_are_still_reported_and_nothing_else_changes(monkeypatch) -> None:
    reported: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    with interrupt.ctrl_c_stops():
        RaisesWhileFinalized()
        interrupt.check()
        assert not interrupt.pressed()
    assert [r.exc_type for r in reported] == [ValueError]  # type: ignore[attr-defined]
    assert sys.unraisablehook == reported.append
