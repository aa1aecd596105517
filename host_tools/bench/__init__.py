"""bench: `make bench` -- deterministic counts written to build/bench/results.json.

Each module bench_<topic>.py defines ``run(ctx) -> dict`` returning flat metric names to
numbers (or short strings). ``ctx`` carries ``root`` (repo path), ``micropython`` (the
binary), ``mpenv`` (environment with MICROPYPATH for the firmware) and ``quick`` (bool).
Prefer counts that do not drift (exchanges, bytes, heap bytes, callgrind instructions);
wall-clock numbers are reported but never asserted.
"""
