"""A resumed run's superseded events (storage/supersede.py): the rule, found in the log by a byte search, and
the delivery that hands them to no backend while every cursor still moves past them."""

from __future__ import annotations

from typing import Any

from runkit.catalog.history import metric_history
from runkit.storage.events import EventWriter, read_events
from runkit.storage.supersede import ResumePoint, Supersession, resume_points
from runkit.tracking.backends.base import Backend
from runkit.tracking.backends.wandb_rebuild import Rebuild
from runkit.tracking.delivery.channel import Channel, Cursor
from runkit.tracking.delivery.pump import Pump


def _resumed_log(path, sessions, first=0):
    """A log of sessions [(from_step or None, last step), ...]: each logs the steps after from_step (1 for
    the first), with values that say which session logged them; a figure at every fifth step. `first`: the
    number of the first of them (> 0: appended to the log as a later session does)."""
    writer = EventWriter(path)
    if not first:
        writer.write("params", {"lr": 0.1, "note": {"type": "resume"}})  # a value that reads like a resume
    for number, (from_step, last) in enumerate(sessions, first):
        if from_step is not None:
            writer.write("resume", {"from_step": from_step, "from_epoch": 0, "session": number}, from_step)
        for step in range((from_step or 0) + 1, last + 1):
            writer.write_metrics(("loss",), (number + step / 1000,), step)
            if step % 5 == 0:
                writer.write("image", {"path": f"media/{step}.png", "name": "img"}, step)
        writer.write("artifact", {"path": "checkpoints/last.pt", "kind": "checkpoint"}, last)
    writer.close()


def test_the_rule_gives_the_catalogs_history_and_the_byte_search_finds_every_resume(tmp_path):
    path = tmp_path / "events.jsonl"
    # Killed at 10, resumed from 6; killed at 12, resumed from 3 (an older checkpoint); ran to 15.
    _resumed_log(path, [(None, 10), (6, 12), (3, 15)])
    log = list(read_events(path))
    found = resume_points(path)
    assert [p.from_step for p in found] == [6, 3]
    assert [p.offset for p in found] == [end for end, e in log if e["type"] == "resume"]
    learned = Supersession()
    learned.learn(log)
    assert learned.points == found == Supersession.scan(path).points

    rule = Supersession.scan(path)
    kept = [(end, e) for end, e in log if not rule.superseded(end, e)]
    assert rule.keep(log) == kept
    # What remains holds each step once, with the last session's values: the catalog's history.
    steps = [e["step"] for _, e in kept if e["type"] == "metrics"]
    assert steps == list(range(1, 16))
    points = [(e["step"], e["data"]["loss"]) for _, e in kept if e["type"] == "metrics"]
    assert points == metric_history(tmp_path)["loss"]
    assert [e["step"] for _, e in kept if e["type"] == "image"] == [5, 10, 15]
    # Only step-bound events go: params, resumes, checkpoints (whatever their step) all stay.
    gone = {e["type"] for end, e in log if rule.superseded(end, e)}
    assert gone == {"metrics", "image"}
    assert (
        sum(e["type"] == "artifact" for _, e in kept) == 3
        and sum(e["type"] == "resume" for _, e in kept) == 2
    )
    assert rule.any_superseded(path)


def test_a_resume_from_the_last_step_supersedes_nothing(tmp_path):
    path = tmp_path / "events.jsonl"
    _resumed_log(path, [(None, 10), (10, 20)])  # stopped after a checkpoint at its last step, continued
    rule = Supersession.scan(path)
    assert [p.from_step for p in rule.points] == [10] and not rule.any_superseded(path)
    assert rule.keep(log := list(read_events(path))) == log
    never = tmp_path / "never.jsonl"
    _resumed_log(never, [(None, 10)])
    assert not Supersession.scan(never) and Supersession.scan(tmp_path / "missing.jsonl").points == []


def test_points_in_any_order_give_the_same_answers():
    a, b = ResumePoint(100, 6), ResumePoint(200, 3)
    forward, backward = Supersession([a, b]), Supersession([b, a, b])
    assert forward.points == backward.points == [a, b]
    for offset, step in [(50, 4), (50, 7), (150, 4), (150, 3), (250, 99)]:
        assert forward.step_superseded(offset, step) == backward.step_superseded(offset, step)
    assert forward.step_superseded(50, 4) and not forward.step_superseded(150, 3)


class _Kept(Backend):
    """A backend that keeps what it is handed, in memory (the delivery's side is what is tested here)."""

    name = "kept"

    def __init__(self) -> None:
        self.rows: list[tuple[int, float]] = []

    def open(self, run: Any) -> dict[str, Any]:
        return {}

    def log_metrics(self, step: int, metrics: dict[str, float], wall: float) -> None:
        self.rows.append((step, metrics["loss"]))

    def close(self, status: Any) -> None:
        return None


def test_the_pump_hands_no_superseded_event_and_moves_every_cursor_past_them(tmp_path):
    path = tmp_path / "events.jsonl"
    _resumed_log(path, [(None, 40), (10, 30)])
    backend = _Kept()
    channel = Channel("kept", backend, tmp_path)
    # Rounds of 7 events: some rounds hold nothing but superseded events, the cursor moves past them all.
    pump = Pump(path, [channel], batch_events=7)
    pump.drain()
    assert backend.rows == metric_history(tmp_path)["loss"]
    assert [s for s, _ in backend.rows] == list(range(1, 31))
    saved = Cursor.load(tmp_path, "kept")
    assert saved.offset == path.stat().st_size and channel.missing() is None
    # A resume appended while the pump runs is learned from the round that reads it.
    late = Pump(tmp_path / "later.jsonl", [], batch_events=7)
    assert not late.supersession
    writer = EventWriter(tmp_path / "later.jsonl")
    for step in range(1, 6):
        writer.write_metrics(("loss",), (step,), step)
    writer.write("resume", {"from_step": 2}, 2)
    writer.close()
    fresh = _Kept()
    late.channels = [Channel("late", fresh, tmp_path)]
    late.drain()
    assert late.supersession.points and [s for s, _ in fresh.rows] == [1, 2]


def _session_folder(wandb_dir, stamp, run_id):
    folder = wandb_dir / f"offline-run-{stamp}-{run_id}"
    folder.mkdir(parents=True)
    (folder / f"run-{run_id}.wandb").write_bytes(b":W&B")
    return folder


def test_wandb_rebuild_retires_the_earlier_folders_once_per_resume_and_survives_a_cut(tmp_path):
    """W&B's side (backends/wandb_rebuild.py) on the file system alone: which folders are retired when,
    and the state that a kill leaves behind."""
    run_dir, wandb_dir, run_id = tmp_path, tmp_path / "wandb", "abcd1234"
    retired = wandb_dir / "superseded"
    _resumed_log(run_dir / "events.jsonl", [(None, 10)])
    first = _session_folder(wandb_dir, "20240101_000000", run_id)
    other = _session_folder(wandb_dir, "20240101_000000", "xabcd1234")  # another run sharing the folder
    assert not Rebuild.prepare(wandb_dir, run_id, run_dir).restart  # never resumed: nothing to do
    assert not retired.exists()

    _resumed_log(run_dir / "events.jsonl", [(6, 12)], first=1)  # killed at 10, resumed from 6
    rebuild = Rebuild.prepare(wandb_dir, run_id, run_dir)
    assert rebuild.restart and not first.exists() and (retired / first.name).is_dir() and other.is_dir()
    # Killed before it closed: the next session (or `runs sync`) rebuilds again, retiring the cut one too.
    second = _session_folder(wandb_dir, "20240101_000100", run_id)
    again = Rebuild.prepare(wandb_dir, run_id, run_dir)
    assert again.restart and not second.exists()
    assert sorted(p.name for p in retired.glob("*offline-run-*")) == sorted([first.name, second.name])
    again.missing = "it lacks the run's events after seq 9"
    again.finish()  # closed incomplete: not done yet
    assert Rebuild.prepare(wandb_dir, run_id, run_dir).restart
    third = _session_folder(wandb_dir, "20240101_000200", run_id)
    done = Rebuild.prepare(wandb_dir, run_id, run_dir)
    done.finish()  # closed with nothing missing: the retired folders go
    assert not list(retired.glob("*offline-run-*")) and other.is_dir() and not third.exists()
    fourth = _session_folder(wandb_dir, "20240101_000300", run_id)
    assert not Rebuild.prepare(wandb_dir, run_id, run_dir).restart and fourth.is_dir()  # no new resume

    # Resumed again from the last step (nothing superseded): appended to, not rebuilt.
    _resumed_log(run_dir / "events.jsonl", [(12, 14)], first=2)
    assert not Rebuild.prepare(wandb_dir, run_id, run_dir).restart and fourth.is_dir()
    # Resumed from an older checkpoint: rebuilt.
    _resumed_log(run_dir / "events.jsonl", [(8, 16)], first=3)
    assert Rebuild.prepare(wandb_dir, run_id, run_dir).restart and not fourth.exists()


def test_a_rebuilt_wandb_run_gets_the_earlier_system_metrics_at_the_steps_of_their_time(tmp_path):
    import json

    _resumed_log(tmp_path / "events.jsonl", [(None, 10), (6, 12)])
    log = [e for _, e in read_events(tmp_path / "events.jsonl")]
    at = {e["step"]: e["time"] for e in log if e["type"] == "metrics" and e["data"]["loss"] < 1}
    resumed_at = next(e["time"] for e in log if e["type"] == "resume")
    samples = [at[3], at[9], resumed_at]  # at step 3, at step 9 (superseded), after the resume
    lines = [json.dumps({"time": t, "system/cpu_percent": 50.0}) for t in samples]
    (tmp_path / "system.jsonl").write_text("\n".join([*lines, '{"time": 1, "system/cpu']) + "\n")
    rebuild = Rebuild(tmp_path / "wandb", "abcd1234", tmp_path)
    assert list(rebuild.system_rows()) == []  # not rebuilding: the samples came live
    rebuild.restart = True
    rows = list(rebuild.system_rows())
    assert [(step, wall) for step, _, wall in rows] == [(3, at[3]), (6, at[9]), (6, resumed_at)]
    assert rows[0][1] == {"system/cpu_percent": 50.0}
