# depot.pgtemp: a throwaway PostgreSQL server -- Debian's `postgresql` binaries, initdb +
# pg_ctl into a temporary folder, listening only on a Unix socket in that folder (no TCP
# port to collide with a neighbour). The tests' PostgreSQL fixture (tests/conftest.py) and
# the depot benchmarks use it; a newcomer can too, to try `ykt depot serve --db URL`
# without installing a database service. `.ci/run` installs the package when missing.
#
#   srv = PgServer.start()      # or None when no PostgreSQL binaries are installed
#   url = srv.new_database()    # a fresh empty database per test
#   srv.stop()
#
# PostgreSQL refuses to run as root: when the tests run as root the server runs as the
# `postgres` user (Debian's package creates it), via runuser.
import contextlib
import glob
import itertools
import os
import shutil
import subprocess
import tempfile
import time

_counter = itertools.count(1)


def bindir():
    """The folder of initdb/pg_ctl/postgres, newest version first, or None."""
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                    key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0,
                    reverse=True):
        if os.path.exists(os.path.join(d, "pg_ctl")) and os.path.exists(
                os.path.join(d, "initdb")):
            return d
    p = shutil.which("pg_ctl")
    return os.path.dirname(p) if p and shutil.which("initdb") else None


class PgServer:
    def __init__(self, root, bindir_, user):
        self.root, self.bin, self.user = root, bindir_, user
        self.data = os.path.join(root, "data")
        self.sock = root  # the Unix socket lives beside the data
        self.port = 5432  # only names the socket file (.s.PGSQL.5432): no TCP listening

    def _cmd(self, *argv):
        argv = [os.path.join(self.bin, argv[0])] + list(argv[1:])
        if self.user:
            argv = ["runuser", "-u", self.user, "--"] + argv
        return argv

    @classmethod
    def start(cls):
        b = bindir()
        if b is None:
            return None
        user = None
        if os.geteuid() == 0:
            user = "postgres"
            try:
                import pwd

                pw = pwd.getpwnam(user)
            except KeyError:
                return None
        root = tempfile.mkdtemp(prefix="ykt-pg-")
        os.chmod(root, 0o755)
        if user:
            os.chown(root, pw.pw_uid, pw.pw_gid)
        srv = cls(root, b, user)
        env = dict(os.environ, LC_ALL="C", LANG="C")
        subprocess.run(srv._cmd("initdb", "-D", srv.data, "-U", "postgres", "--auth=trust",
                                "-E", "UTF8", "--no-sync"),
                       check=True, capture_output=True, env=env, timeout=120)
        opts = ("-c listen_addresses='' -c unix_socket_directories=%s -c fsync=off "
                "-c max_connections=300 -c shared_buffers=64MB" % srv.sock)
        subprocess.run(srv._cmd("pg_ctl", "-D", srv.data, "-o", opts, "-l",
                                os.path.join(root, "log"), "-w", "-t", "60", "start"),
                       check=True, capture_output=True, env=env, timeout=120)
        return srv

    def url(self, dbname="postgres"):
        return "postgresql:///%s?host=%s&port=%d&user=postgres" % (dbname, self.sock, self.port)

    def new_database(self):
        import psycopg

        name = "t%d_%d" % (os.getpid(), next(_counter))
        with psycopg.connect(self.url(), autocommit=True) as c:
            c.execute("CREATE DATABASE %s" % name)
        return self.url(name)

    def stop(self):
        subprocess.run(self._cmd("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop"),
                       capture_output=True, timeout=60)
        for _ in range(50):
            if not os.path.exists(os.path.join(self.sock, ".s.PGSQL.%d" % self.port)):
                break
            time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)

    def kill(self):
        """The server dies as in a power cut (SIGKILL to the postmaster), then restarts on
        the same data: what a database killed mid-batch looks like to the station."""
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            pid = int(f.readline())
        os.kill(pid, 9)
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.05)
        # the orphaned backends notice the postmaster is gone and exit; then start again
        for _ in range(100):
            r = subprocess.run(["pgrep", "-f", "postgres.*%s" % self.data],
                               capture_output=True)
            if r.returncode != 0:
                break
            time.sleep(0.05)
        env = dict(os.environ, LC_ALL="C", LANG="C")
        opts = ("-c listen_addresses='' -c unix_socket_directories=%s -c fsync=off "
                "-c max_connections=300 -c shared_buffers=64MB" % self.sock)
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(self.data, "postmaster.pid"))
        subprocess.run(self._cmd("pg_ctl", "-D", self.data, "-o", opts, "-l",
                                 os.path.join(self.root, "log"), "-w", "-t", "60", "start"),
                       check=True, capture_output=True, env=env, timeout=120)


def main():
    """`python -m depot.pgtemp`: a throwaway server until Ctrl-C; prints a database URL."""
    import signal

    srv = PgServer.start()
    if srv is None:
        print("no PostgreSQL binaries (Debian: apt-get install postgresql)")
        return 3
    try:
        print(srv.new_database(), flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    import signal
    import sys

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # for sigwait
    sys.exit(main())
