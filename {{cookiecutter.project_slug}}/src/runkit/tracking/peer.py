"""The tracker of a rank other than 0 under torchrun: ExperimentTracker's API, and nothing written."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runkit.storage.layout import DATASET_FILE, MEDIA_DIR
from runkit.storage.run_dir import RunDir
from runkit.storage.status import Status
from runkit.tracking.run_files import _media_name
from runkit.tracking.summary import Summary
from runkit.tracking.tracker import ExperimentTracker

if TYPE_CHECKING:
    from runkit.distributed import Distributed


class PeerTracker(ExperimentTracker):
    """The tracker of a rank other than 0 in a multi-process run: the same API, and nothing is written.

    The run (its directory, run.json, events.jsonl, the backends) belongs to rank 0. This rank only says how
    it is doing in `ranks/<rank>.json` (runkit.distributed.rank_session), which is how its failure, its death
    or its preemption reaches the run.
    """

    is_writer = False

    def __init__(
        self,
        run_dir: RunDir,
        run_id: str,
        name: str,
        distributed: Distributed,
        monitor: str | None,
        mode: str = "max",
    ) -> None:
        # No EventWriter, no lock, no heartbeat: nothing of the run is opened here.
        self.run_dir = run_dir
        self.run_id = run_id
        self.name = name
        self.summary = Summary(monitor, mode)
        self._distributed = None  # rank 0 resolves the run's ending; this rank only reports its own
        self._peer: Distributed = distributed
        self._finished = False
        self._step = 0
        self._session: Any = None
        self._old_signals = {}

    @property
    def backends(self) -> dict[str, Any]:
        return {}

    def log_params(self, params: Mapping[str, Any]) -> None:
        return None

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        self._step = int(step) if step is not None else self._step + 1

    def set_tags(self, tags: Iterable[str] | Mapping[str, Any]) -> None:
        return None

    def log_artifact(self, path: str | Path, kind: str = "file", name: str | None = None) -> Path:
        return Path(path)

    def log_checkpoint(
        self, path: str | Path, aliases: Iterable[str] = ("last",), step: int | None = None
    ) -> None:
        return None

    def log_figure(self, figure: Any, name: str, step: int | None = None) -> Path:
        return self.run_dir.figures / f"{name}.png"

    def log_text(self, text: str, name: str) -> Path:
        return self.run_dir.artifacts / (name if Path(name).suffix else f"{name}.txt")

    def log_image(self, image: Any, name: str, step: int | None = None) -> Path:
        return self.run_dir.path / MEDIA_DIR / _media_name(name, step, ".png")

    def log_table(
        self, data: Any, name: str, columns: Iterable[str] | None = None, step: int | None = None
    ) -> Path:
        return self.run_dir.path / MEDIA_DIR / _media_name(name, step, ".csv")

    def log_hparams(self, params: Mapping[str, Any], metrics: Mapping[str, Any]) -> None:
        return None

    def log_dataset(self, info: Mapping[str, Any]) -> Path:
        return self.run_dir.path / DATASET_FILE

    def log_epoch(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        self.log_metrics(metrics, step)

    def mark_resume(self, from_step: int, from_epoch: int, session: int) -> None:
        return None

    def attach_delivery(self, shipper: Any) -> None:
        return None

    def update_record(self, **fields: Any) -> dict[str, Any]:
        return {}

    def _write_summary(self) -> None:
        return None

    def begin(self) -> None:
        from runkit.distributed import rank_session

        self._install_signal_handlers()
        self._session = rank_session(self._peer, self.path)
        self._session.__enter__()

    def finish(self, status: Status | str = Status.COMPLETED, error: str | None = None) -> None:
        if self._finished:
            return
        self._finished = True
        self._restore_signal_handlers()

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        try:
            if self._session is not None:
                session, self._session = self._session, None
                if exc is None:
                    session.__exit__(None, None, None)
                else:
                    # rank_session records the failure and re-raises it: the `with` block re-raises anyway.
                    with contextlib.suppress(BaseException):
                        session.__exit__(exc_type, exc, tb)
        finally:
            self.finish()
