# fwconsts: read a firmware module's module-level constants from its source (CPython only).
# SPDX-License-Identifier: MIT
#
# Firmware modules keep private `_X = const(..)` copies of other modules' values (a private
# const takes no MicroPython heap; a public name ~40 B). The consts tests compare each copy
# with its source through this one parser.
import ast


def module_consts(path):
    """{name: value} of module-level `NAME = const(<literal>)` and `NAME = <literal>`."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    out = {}
    for n in tree.body:
        t = n.targets[0] if isinstance(n, ast.Assign) and len(n.targets) == 1 else None
        if isinstance(t, ast.Name):
            v = n.value
            if isinstance(v, ast.Call) and getattr(v.func, "id", None) == "const":
                v = v.args[0]
            try:
                out[t.id] = ast.literal_eval(v)
            except ValueError:
                pass
    return out
