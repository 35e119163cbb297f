"""events.jsonl's writer and reader on their own: the memory-mapped log after a SIGKILL, from several threads,
while a reader tails it, across windows, and with `memory_map=False`."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

from runkit.storage import events as events_module
from runkit.storage.events import EventWriter, last_seq, log_size, read_events
from runkit.tracking.summary import Summary

from conftest import ROOT, project_env


def logged(path):
    return [event for _, event in read_events(path)]


@pytest.fixture
def small_windows(monkeypatch):
    """Windows of one allocation unit, so a few hundred lines cross many of them."""
    import mmap

    monkeypatch.setattr(events_module, "WINDOW", mmap.ALLOCATIONGRANULARITY)


KILLED_WRITER = """
import os, signal, sys
from runkit.storage.events import EventWriter
writer = EventWriter(sys.argv[1])
writer.write("params", {"lr": 0.1})
for step in range(1, int(sys.argv[2]) + 1):
    writer.write_metrics(("loss", "acc"), (1.0 / step, step / 1000), step)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("steps", [3, 3000])  # inside the first window; across several
def test_every_line_survives_sigkill_and_the_next_writer_continues_the_log(tmp_path, steps):
    path = tmp_path / "events.jsonl"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(path), str(steps)], env=project_env(), cwd=ROOT
    )
    assert proc.returncode == -9
    # The dead writer's window is still there, its unwritten part NUL: readers stop at the first NUL.
    assert path.stat().st_size > log_size(path) and path.read_bytes()[log_size(path) :].strip(b"\0") == b""
    events = logged(path)
    assert [e["seq"] for e in events] == list(range(1, steps + 2))
    assert [e["step"] for e in events[1:]] == list(range(1, steps + 1))
    assert events[-1]["data"] == {"loss": 1.0 / steps, "acc": steps / 1000}
    assert last_seq(path) == steps + 1

    writer = EventWriter(path)  # what the shipper does to mark the run crashed, or a resumed run
    writer.write("status", {"status": "crashed"})
    writer.close()
    assert b"\0" not in path.read_bytes() and path.stat().st_size == log_size(path)
    assert [e["seq"] for e in logged(path)] == list(range(1, steps + 3))


def test_a_line_cut_by_a_crash_is_ended_and_skipped(tmp_path):
    path = tmp_path / "events.jsonl"
    writer = EventWriter(path)
    for step in range(1, 4):
        writer.write_metrics(("loss",), (0.5,), step)
    writer.close()
    path.write_bytes(path.read_bytes()[:-7] + b"\0" * 100)  # a cut last line, then an unwritten tail
    writer = EventWriter(path)
    writer.write("status", {"status": "crashed"})
    writer.close()
    events = logged(path)
    assert [e["seq"] for e in events] == [1, 2, 3] and events[-1]["type"] == "status"  # seq 3 is reused
    assert len(path.read_bytes().splitlines()) == 4  # the cut line is still there, on its own line


@pytest.mark.parametrize("memory_map", [True, False])
def test_threads_logging_at_once_lose_nothing_and_share_one_gap_free_seq(tmp_path, small_windows, memory_map):
    path = tmp_path / "events.jsonl"
    writer = EventWriter(path, memory_map=memory_map)
    per_thread = 400

    def work(n: int) -> None:
        for i in range(per_thread):
            if i % 50 == 0:
                writer.write("tags", {f"thread{n}": str(i)})
            writer.write_metrics((f"t{n}/x", f"t{n}/y"), (float(i), -float(i)), i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    events = logged(path)
    assert sorted(e["seq"] for e in events) == list(range(1, 4 * (per_thread + 8) + 1))
    for n in range(4):
        mine = [e for e in events if e["type"] == "metrics" and f"t{n}/x" in e["data"]]
        assert [e["step"] for e in mine] == list(range(per_thread))  # each thread's own order is kept
        assert all(e["data"][f"t{n}/y"] == -e["data"][f"t{n}/x"] for e in mine)
    assert len(path.read_bytes().splitlines()) == len(events)  # no damaged line anywhere


def test_a_reader_tailing_the_log_sees_only_whole_events(tmp_path, small_windows):
    path = tmp_path / "events.jsonl"
    writer = EventWriter(path)
    total = 3000
    done = threading.Event()

    def produce() -> None:
        for step in range(1, total + 1):
            writer.write_metrics(("loss",), (step * 0.5,), step)
        done.set()

    seen, offset = [], 0
    producer = threading.Thread(target=produce)
    producer.start()
    while not done.is_set() or offset < log_size(path):
        for end, event in read_events(path, offset):
            seen.append(event)
            offset = end  # where the next read starts
    producer.join()
    writer.close()
    assert [e["step"] for e in seen] == list(range(1, total + 1))
    assert all(e["data"]["loss"] == e["step"] * 0.5 for e in seen)


@pytest.mark.parametrize("memory_map", [True, False])
def test_both_write_modes_read_back_alike(tmp_path, memory_map):
    path = tmp_path / "events.jsonl"
    writer = EventWriter(path, memory_map=memory_map)
    writer.write("params", {"a": {"b": 1}})
    writer.write_metrics(("x", "y"), (1.5, float("nan")), 3)
    writer.close()
    params, metrics = logged(path)
    assert params["data"] == {"a": {"b": 1}} and metrics["step"] == 3 and metrics["data"]["x"] == 1.5
    assert math.isnan(metrics["data"]["y"]) and path.stat().st_size == log_size(path)
    line = json.loads(path.read_bytes().splitlines()[1])  # plain JSON: names readable, values packed
    assert line["names"] == ["x", "y"] and line["type"] == "metrics" and line["seq"] == 2


def test_numbers_of_any_kind_are_accepted_and_anything_else_is_named(tmp_path):
    path = tmp_path / "events.jsonl"
    writer = EventWriter(path)
    writer.write_metrics(("np", "torch", "int", "bool"), (np.float32(0.5), torch.tensor(2.0), 3, True), 1)
    with pytest.raises(TypeError, match=r"metric values must be numbers: label='cat'"):
        writer.write_metrics(("ok", "label"), (1.0, "cat"), 2)
    writer.write_metrics(("ok",), (1.0,), 3)
    writer.close()
    first, last = logged(path)
    assert first["data"] == {"np": 0.5, "torch": 2.0, "int": 3.0, "bool": 1.0}
    assert (first["seq"], last["seq"]) == (1, 2)  # the refused call used no sequence number


def test_summary_last_values_come_from_the_newest_batch_of_each_name(tmp_path):
    path = tmp_path / "events.jsonl"
    writer = EventWriter(path)
    summary = Summary("val/acc", "max")
    summary.pending[("loss", "lr")] = writer.write_metrics(("loss", "lr"), (0.9, 0.1), 1)
    summary.pending[("loss",)] = writer.write_metrics(("loss",), (0.7,), 2)
    summary.pending[("loss", "lr")] = writer.write_metrics(("loss", "lr"), (0.5, 0.05), 3)
    writer.close()
    assert summary.last == {"loss": 0.5, "lr": 0.05} and not summary.pending
    assert summary.observe(0.8, 3) and not summary.observe(float("nan"), 4) and summary.best_step == 3
