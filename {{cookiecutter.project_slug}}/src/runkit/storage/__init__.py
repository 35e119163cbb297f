"""Storage primitives: the run directory contract, the event log, json io, the run lock, liveness, status
and run lookup. Depends on nothing else in the kit but `runkit.errors` and `runkit.ids`."""
