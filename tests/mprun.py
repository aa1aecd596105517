# mprun: run the tier-1 firmware tests (tests/fw/test_*.py) on MicroPython.
# SPDX-License-Identifier: MIT
#
#   MICROPYPATH=firmware:host_tools:tests:.frozen \
#       micropython -X heapsize=128k tests/mprun.py [name-filter ...]
#
# Each module's test_* functions run in name order; a test passes unless it raises.
# fwtest.Skipped marks a skip. The last line is "N passed, N failed, N skipped", which CI reads.
import gc
import os
import sys

import fwtest

_HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."


def main():
    filters = sys.argv[1:]
    names = sorted(
        n[:-3] for n in os.listdir(_HERE + "/fw") if n.startswith("test_") and n.endswith(".py")
    )
    passed = failed = skipped = 0
    for mod_name in names:
        if filters and mod_name not in filters and not any(
            f in mod_name for f in filters if f not in names
        ):
            continue
        try:
            mod = __import__("fw." + mod_name, None, None, ["x"])
        except Exception as e:
            print("ERROR import", mod_name)
            sys.print_exception(e)
            failed += 1
            continue
        for t in sorted(k for k in dir(mod) if k.startswith("test_")):
            fn = getattr(mod, t)
            if not callable(fn):
                continue
            gc.collect()
            try:
                fn()
            except fwtest.Skipped as e:
                skipped += 1
                print("SKIP", mod_name + "." + t, e.args[0] if e.args else "")
                continue
            except Exception as e:
                failed += 1
                print("FAIL", mod_name + "." + t)
                sys.print_exception(e)
                continue
            passed += 1
            if fwtest.VERBOSE:
                print("ok  ", mod_name + "." + t)
        del sys.modules["fw." + mod_name]
        try:  # __import__ also binds the module on the fw package: drop that too
            delattr(sys.modules["fw"], mod_name)
        except (AttributeError, KeyError):
            pass
        gc.collect()
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    sys.exit(1 if failed or not passed else 0)


main()
