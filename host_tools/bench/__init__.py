"""bench: `make bench` -- deterministic counts written to build/bench/results.json.

Each module bench_<topic>.py defines ``run(ctx) -> dict`` returning flat metric names to
numbers (or short strings). ``ctx`` carries ``root`` (repo path), ``micropython`` (the
binary), ``mpenv`` (environment with MICROPYPATH for the firmware) and ``quick`` (bool).
Prefer counts that do not drift (exchanges, bytes, heap bytes, callgrind instructions);
wall-clock numbers are reported but never asserted.
"""


def run_mp(ctx, cmd, timeout, valgrind=False):
    """Run a MicroPython command line (cmd[0] is ctx.micropython) in the repo with
    PYTHONHASHSEED=0, under callgrind when valgrind (only the interpreter's main is
    counted); -> (instructions or None, {KEY: int} from "KEY <int>" stdout lines, the
    CompletedProcess)."""
    import os
    import re
    import subprocess
    import tempfile

    env = dict(ctx.mpenv)
    env["PYTHONHASHSEED"] = "0"
    with tempfile.TemporaryDirectory() as tmp:
        if valgrind:
            # the venv's python3 path, not the resolved binary (toolchain.md §7)
            py = os.path.join(os.path.dirname(ctx.micropython), "python3")
            cmd = ["valgrind", "--tool=callgrind",
                   "--callgrind-out-file=" + os.path.join(tmp, "cg.out"),
                   "--toggle-collect=micropython_unix_main", py] + list(cmd)
        p = subprocess.run(cmd, env=env, cwd=ctx.root, capture_output=True, text=True,
                           timeout=timeout)
    keys = {}
    for line in p.stdout.splitlines():
        f = line.split()
        if len(f) == 2 and f[1].lstrip("-").isdigit():
            keys[f[0]] = int(f[1])
    ir = None
    if valgrind:
        m = re.search(r"Collected : (\d+)", p.stderr)
        ir = int(m.group(1)) if m else None
    return ir, keys, p


def heap_locked_alloc(ctx, snippet, heap, timeout, who):
    """Run a tap-replay snippet that prints "ALLOC <bytes>" (the bytes a tap allocated
    under micropython.heap_lock, -1 when the tap failed) on the unix port; -> that
    number, or -1 (with the reason on stderr) when the snippet did not run."""
    import subprocess
    import sys

    try:
        _, keys, p = run_mp(ctx, [ctx.micropython, "-X", "heapsize=" + heap, "-c", snippet],
                            timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        print("%s: the heap-locked tap did not run: %s" % (who, e), file=sys.stderr)
        return -1
    if "ALLOC" not in keys:
        print("%s: the heap-locked tap did not run:\n%s" % (who, p.stderr[-800:]),
              file=sys.stderr)
        return -1
    return keys["ALLOC"]
