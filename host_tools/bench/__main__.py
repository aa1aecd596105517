"""Run every bench_*.py module and merge the results into one flat JSON object."""

import argparse
import importlib
import json
import os
import pkgutil
import shutil
import sys
import time

import bench

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def mp_env(root):
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join(
        [os.path.join(root, p) for p in ("firmware", "host_tools", "boards/unix")]
        + [".frozen"]
    )
    return env


def main(argv=None):
    ap = argparse.ArgumentParser(prog="bench")
    ap.add_argument("only", nargs="*", help="run only bench modules whose name contains these")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "results.json"))
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    ctx = argparse.Namespace(
        root=ROOT,
        micropython=shutil.which("micropython") or os.path.join(sys.prefix, "bin", "micropython"),
        mpenv=mp_env(ROOT),
        quick=a.quick,
    )
    results = {}
    if os.path.exists(a.out):
        with open(a.out) as f:
            try:
                results = json.load(f)
            except ValueError:
                results = {}
    for m in sorted(pkgutil.iter_modules(bench.__path__), key=lambda m: m.name):
        if not m.name.startswith("bench_"):
            continue
        if a.only and not any(o in m.name for o in a.only):
            continue
        t0 = time.time()
        print("bench: %s ..." % m.name, flush=True)
        r = importlib.import_module("bench." + m.name).run(ctx)
        for k, v in sorted(r.items()):
            print("  %-34s %s" % (k, v))
        results.update(r)
        print("  (%.1f s)" % (time.time() - t0))
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
    print("bench: wrote %s (%d metrics)" % (a.out, len(results)))


if __name__ == "__main__":
    main()
