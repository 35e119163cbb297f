"""The catalog of finished and running runs, read back from the run directories: what `runs list`, `show`,
`compare`, `report`, `export` and friends look at.

Layers: storage < repro < tracking < sweeps < catalog < reports < cli. The catalog only reads: run
directories become `RunEntry` rows (`runs`, `entry`), sweep folders `SweepEntry` groups (`sweeps`),
events.jsonl metric histories (`history`), `--where` filters and sorting (`query`), `show`'s details
(`details`), `compare`'s side-by-side values (`compare`) and `export`'s registry rows (`export`).
"""
