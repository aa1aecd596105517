"""Wheel layout (pyproject.toml holds the metadata).

site-packages gets one package, `yikatong` (host_tools/yikatong). Its build step below adds
the application tree under yikatong/_app/ -- the host packages, the firmware and the board
files, in the same folders as in a checkout -- so that no generic top-level name (`ykt`,
`emu`, `depot`, `validator`, `micropython`) is installed; yikatong/__init__.py says how the
`ykt` entry point finds them. An editable install (`pip install -e .`) copies nothing: the
checkout is the tree.
"""

import os

from setuptools import setup
from setuptools.command.build_py import build_py

# what `ykt` needs at run time, as checkout paths; the benches, the tests and the host-only
# format registry (firmware/formats, used by `make formats`) stay in the checkout
APP_TREE = ("host_tools/ykt", "host_tools/emu", "host_tools/depot", "host_tools/shims",
            "firmware/validator", "firmware/main.py", "boards")
_SKIP_DIRS = {"__pycache__"}
_SKIP_EXT = (".pyc", ".pyo", ".mpy")


def app_files(root="."):
    """(source path, path under yikatong/_app) for every shipped file, sorted."""
    out = []
    for top in APP_TREE:
        src = os.path.join(root, top)
        if os.path.isfile(src):
            out.append((src, top))
            continue
        for d, dirs, files in os.walk(src):
            dirs[:] = sorted(x for x in dirs
                             if x not in _SKIP_DIRS and not x.endswith(".egg-info"))
            for f in sorted(files):
                if f.endswith(_SKIP_EXT):
                    continue
                full = os.path.join(d, f)
                out.append((full, os.path.relpath(full, root)))
    return out


class BuildWithTree(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for src, rel in app_files():
            dst = os.path.join(self.build_lib, "yikatong", "_app", rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            self.copy_file(src, dst, preserve_mode=False)


setup(cmdclass={"build_py": BuildWithTree})
