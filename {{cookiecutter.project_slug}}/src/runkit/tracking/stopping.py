"""How a run stops: the one line that says how it ended, and how its tracker handles SIGTERM and Ctrl-C.
SIGTERM during training is a preemption; once finish() has begun the status is decided and a signal no
longer changes it (a second one while waiting for the backends stops the wait). Signals are handled in the
main thread only."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from pathlib import Path
from typing import Any

from runkit.storage.status import Preempted, Status
from runkit.tracking.run_files import _last_line

log = logging.getLogger("runkit.tracking.tracker")  # the tracker's own name, as before


class _StopWaiting(Exception):  # noqa: N818 - a signal, not an error
    """A second Ctrl-C (or SIGTERM) while finish() waits for the backends: stop waiting."""


class SignalHandling:
    """The signal handling ExperimentTracker mixes in: the handlers it installs, and how to restore them."""

    _old_signals: dict[int, Any]
    _waiting: bool  # finish() is waiting for the shipper

    def _install_signal_handlers(self) -> None:
        # Signals can only be handled in the main thread; elsewhere (e.g. a launcher's worker thread) the
        # process keeps its own handling and the shipper still finalises the run if the process dies.
        if threading.current_thread() is not threading.main_thread():
            return

        def on_sigterm(signum: int, frame: Any) -> None:
            raise Preempted(f"received signal {signum}")

        self._old_signals[signal.SIGTERM] = signal.signal(signal.SIGTERM, on_sigterm)

    def _shield_ending(self) -> None:
        """Once finish() has begun the run's status is decided: Ctrl-C and SIGTERM no longer change it (a
        signal there used to leave one status in the log, another in run.json, a third in a backend). The
        first one says what is going on; another while waiting for the backends stops the wait (the shipper,
        in its own session, finishes them with the same status)."""
        if threading.current_thread() is not threading.main_thread():
            return
        seen: list[int] = []

        def on_signal(signum: int, frame: Any) -> None:
            if seen and self._waiting:
                raise _StopWaiting
            seen.append(signum)
            log.warning(
                "the run is ending and its status is recorded; sending the rest to the backends (press "
                "Ctrl-C again to stop waiting for them)"
            )

        for signum in (signal.SIGINT, signal.SIGTERM):
            current = signal.getsignal(signum)
            if current is signal.SIG_IGN:
                continue
            previous = signal.signal(signum, on_signal)
            self._old_signals.setdefault(signum, previous)

    def _defer_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
        self._old_signals.setdefault(signal.SIGTERM, previous)

    def _restore_signal_handlers(self) -> None:
        for signum, handler in self._old_signals.items():
            signal.signal(signum, handler)
        self._old_signals.clear()


def say_ending(run_id: str, path: Path, status: Status, exc: BaseException | None, error: str | None) -> None:
    """The run's last word on the terminal and in train.log: why it failed (the traceback is in a file), or
    how to continue a run that was stopped."""
    if status is Status.FAILED:
        log.error(
            "run %s failed: %s (traceback in %s)",
            run_id,
            _last_line(error),
            path / "traceback.txt",
        )
    elif status is Status.CRASHED:
        log.error("run %s crashed: %s", run_id, error)
    elif status in (Status.ABORTED, Status.PREEMPTED):
        # One line that says what happened and how to go on, instead of a traceback.
        reason = str(exc) or type(exc).__name__
        log.warning(
            "run %s %s (%s); continue it with: python train.py resume=%s",
            run_id,
            status.value,
            reason,
            run_id,
        )


def disk_full_line(run_id: str, path: Path, exc: OSError, status: Status, step: int | None) -> str:
    """The one line for a run that a full disk stopped: where, what the run is, what was kept, what next."""
    where = Path(exc.filename) if exc.filename else path
    with contextlib.suppress(ValueError):
        where = where.relative_to(path.parent)  # <run dir name>/media/x.png: short, and still says which run
    kept = ["events.jsonl"] + sorted(
        f"checkpoints/{p.name}" for p in (path / "checkpoints").glob("*.pt") if p.stat().st_size
    )
    at = f" at step {step}" if step else ""
    return (
        f"no space left on device writing {where}: run {run_id} {status.value}{at}; kept: {', '.join(kept)}. "
        f"Free space, then continue it from its last checkpoint with: python train.py resume={run_id}"
    )
