"""Run every tier-1 test module on the MicroPython unix port, one process per module.

Each module gets a fresh `micropython -X heapsize=128k` (the MCU's heap; a module may ask
for more for its fixtures with a line `MP_HEAP = "2m"`), so one test's
emulators and tables never eat another's memory -- as on the device, where the validator
runs alone. Prints one line per module and the total as "N passed, N failed, N skipped".
Usage: python tests/mpsuite.py [-j JOBS] [name-filter ...]
"""

import concurrent.futures
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAP = os.environ.get("YKT_MP_HEAP", "128k")


def module_heap(name):
    """A module may declare MP_HEAP = "2m" when its *fixtures* (a RAM flash image, a big
    table) need more than the MCU heap; the firmware itself is held to 128 KiB by the
    tier-2 tests, which run the real firmware process at that size."""
    with open(os.path.join(ROOT, "tests", "fw", name + ".py")) as f:
        m = re.search(r'^MP_HEAP = "(\w+)"', f.read(), re.M)
    return m.group(1) if m else HEAP


def run_module(name):
    mp = shutil.which("micropython") or os.path.join(
        os.path.dirname(sys.executable), "micropython"
    )
    env = dict(os.environ)
    env["MICROPYPATH"] = (
        ":".join(os.path.join(ROOT, p) for p in ("firmware", "host_tools", "tests")) + ":.frozen"
    )
    p = subprocess.run(
        [mp, "-X", "heapsize=" + module_heap(name), os.path.join(ROOT, "tests", "mprun.py"), name],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=900,
    )
    out = p.stdout + p.stderr
    m = re.search(r"^(\d+) passed, (\d+) failed, (\d+) skipped$", out, re.M)
    if not m:
        return name, 0, 1, 0, out
    return name, int(m.group(1)), int(m.group(2)), int(m.group(3)), out


def main(argv):
    jobs = 2
    if argv[:1] == ["-j"]:
        jobs, argv = int(argv[1]), argv[2:]
    names = sorted(
        f[:-3]
        for f in os.listdir(os.path.join(ROOT, "tests", "fw"))
        if f.startswith("test_") and f.endswith(".py")
    )
    if argv:  # exact module names, else substrings
        exact = [n for n in names if n in argv]
        names = exact if exact else [n for n in names if any(a in n for a in argv)]
    tp = tf = ts = 0
    with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
        for name, p, f, s, out in ex.map(run_module, names):
            tp, tf, ts = tp + p, tf + f, ts + s
            print("%-40s %3d passed, %d failed, %d skipped" % (name, p, f, s))
            if f:
                print(out[-4000:])
    print("%d passed, %d failed, %d skipped" % (tp, tf, ts))
    return 1 if tf or not tp else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
