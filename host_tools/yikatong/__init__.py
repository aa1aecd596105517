"""yikatong: the one name this project installs into site-packages.

The host tools are written as the packages `ykt`, `emu`, `depot` and `bench` (and they run
the firmware's own `validator` package under CPython, with a `micropython` shim). Those are
generic names that other software also uses, so an installed wheel does not put them in
site-packages: it ships them, with the firmware and board files `ykt sim` and `ykt flash`
need, as the application tree `yikatong/_app/`, laid out exactly like a source checkout:

    yikatong/_app/host_tools/{ykt,emu,depot,bench,shims}
    yikatong/_app/firmware/{main.py,validator}
    yikatong/_app/boards/{unix,shim,esp32s3_pn532}

Only the `ykt` entry point (and `python -m yikatong`) calls bootstrap(), which puts that
tree in front of sys.path for its own process and its children (PYTHONPATH). Importing
`yikatong` changes nothing, so a program that has its own `depot` or `validator` package
can install yikatong beside it. In a source checkout (`pip install -e .`, what the
Makefile does) there is no `_app`: the tree is the checkout itself.
"""

import os
import sys

__version__ = "0.1.0"

_HERE = os.path.dirname(os.path.abspath(__file__))
_APP = os.path.join(_HERE, "_app")
# the folders of the tree that hold importable CPython code, in import order
_PATHS = ("host_tools", "host_tools/shims", "firmware")


def installed():
    """True when running from an installed wheel (the tree is the shipped `_app`)."""
    return os.path.isdir(os.path.join(_APP, "host_tools"))


def app_root():
    """The folder laid out like a checkout: host_tools/, firmware/, boards/."""
    if installed():
        return _APP
    return os.path.dirname(os.path.dirname(_HERE))  # host_tools/yikatong -> checkout


def cache_dir(*parts):
    """Where generated files (ROMFS images) go: build/ in a checkout, the user's cache
    folder when installed (site-packages may be read-only and is shared)."""
    if installed():
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                                 ".cache")
        d = os.path.join(base, "yikatong", __version__)
    else:
        d = os.path.join(app_root(), "build")
    return os.path.join(d, *parts)


def bootstrap():
    """Make the tree's packages importable in this process and in the processes it starts
    (PYTHONPATH: `python -m emu.romfs`, the benches' workers). Idempotent."""
    root = app_root()
    paths = [os.path.join(root, p) for p in _PATHS]
    for p in reversed(paths):
        if p not in sys.path:
            sys.path.insert(0, p)
    old = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths + [p for p in old if p not in paths])
    return root
