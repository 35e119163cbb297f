"""Delivery: feeding the chosen backends from the run's events.jsonl, in a process of their own.

One job per module:

- options:  the `tracking.*` settings, file names, the one-line error format;
- opening:  building a backend from its config, and what it needs to open (or reopen) its run;
- dispatch: the one place that maps an event's kind to a backend's typed method (then `flush()`);
- channel:  one backend fed from one log: its cursor file (resume without resending), retries, set-aside;
- pump:     tails events.jsonl and feeds every channel that is due, one read for all of them;
- ending:   the session's final status when the trainer died without a word (`crashed`);
- launch:   the trainer's side (`Shipper`): preflight, start the child, the pipe protocol, close;
- child:    the shipper process itself: handshake, follow the log, drain, close every backend;
- closing:  the end of a session: every backend drains and closes in a thread of its own, all at once.

`runs sync` (tracking/sync.py) runs channel + pump in the calling process: the same code path, after the fact.
Nothing here imports a backend's library; each adapter imports its own when it is built.
"""
