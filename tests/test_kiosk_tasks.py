"""The kiosk's task runner: a typed ``run(op, on_done, on_error)`` whose errors are never dropped.

A real ``TaskRunner`` on its own thread under the offscreen Qt platform: the operation runs off the
GUI thread, its outcome comes back on the GUI thread, and an error without an ``on_error`` reaches
the runner's ``show_error`` (the window's error banner in the kiosk).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from functools import partial

import pytest
from pytestqt.qtbot import QtBot

from kiosk_ui.workers import TaskRunner, ignore_result, operation_name
from station.errors import StationError

pytestmark = pytest.mark.qt


@pytest.fixture
def runner(qtbot: QtBot) -> Iterator[TaskRunner]:
    tasks = TaskRunner("test-tasks")
    yield tasks
    tasks.stop()


def lookup(number: str, *, where: str) -> str:
    """A named operation: what the kiosk's pages pass instead of a lambda."""
    return f"{where}:{number}:{threading.current_thread().name}"


def refuse() -> str:
    raise StationError("The queue is busy: try again.", code="store.busy")


def test_the_result_comes_back_on_the_gui_thread(qtbot: QtBot, runner: TaskRunner) -> None:
    got: list[tuple[str, bool]] = []
    gui = threading.current_thread()

    def done(value: str) -> None:
        got.append((value, threading.current_thread() is gui))

    runner.run(partial(lookup, "42", where="outcomes"), done)
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    value, on_gui = got[0]
    assert value.startswith("outcomes:42:") and not value.endswith(gui.name)  # ran on the task thread
    assert on_gui and not runner.busy


def test_an_error_goes_to_on_error(qtbot: QtBot, runner: TaskRunner) -> None:
    errors: list[Exception] = []
    shown: list[Exception] = []
    runner.show_error = shown.append
    runner.run(refuse, ignore_result, errors.append)
    qtbot.waitUntil(lambda: bool(errors), timeout=5000)
    assert isinstance(errors[0], StationError) and errors[0].code == "store.busy"
    assert not shown  # the caller handled it


def test_an_error_without_a_handler_is_shown_not_dropped(
    qtbot: QtBot, runner: TaskRunner, caplog: pytest.LogCaptureFixture
) -> None:
    shown: list[Exception] = []
    runner.show_error = shown.append  # the window installs its banner here
    with caplog.at_level(logging.WARNING, logger="kiosk.workers"):
        runner.run(refuse, ignore_result)
        qtbot.waitUntil(lambda: bool(shown), timeout=5000)
    assert isinstance(shown[0], StationError) and shown[0].message == "The queue is busy: try again."
    assert "task refuse failed: store.busy" in caplog.text  # the code, never the text


def test_tasks_run_one_after_another_in_order(qtbot: QtBot, runner: TaskRunner) -> None:
    got: list[int] = []
    for n in range(20):
        runner.run(partial(int, str(n)), got.append)
    qtbot.waitUntil(lambda: len(got) == 20, timeout=5000)
    assert got == list(range(20))


def test_a_task_is_named_for_its_function() -> None:
    assert operation_name(partial(lookup, "1", where="x")) == "lookup"
    assert operation_name(partial(partial(lookup, "1"), where="x")) == "lookup"
    assert operation_name(refuse) == "refuse"
