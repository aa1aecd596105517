# Test path setup: firmware, host tools, the CPython micropython shim and tests/ itself.
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in ("firmware", "host_tools", "host_tools/shims", "tests"):
    path = os.path.join(ROOT, p)
    if path not in sys.path:
        sys.path.insert(0, path)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server for the session (depot.pgtemp); skipped only when the
    binaries are missing -- `.ci/run` installs Debian's postgresql, so CI always has it."""
    from depot import pgtemp

    srv = pgtemp.PgServer.start()
    if srv is None:
        if os.environ.get("CI") or os.environ.get("YKT_REQUIRE_PG"):
            pytest.fail("PostgreSQL binaries not found (apt-get install postgresql)")
        pytest.skip("PostgreSQL binaries not installed (apt-get install postgresql)")
    yield srv
    srv.stop()


@pytest.fixture
def pg_url(pg_server):
    """A fresh, empty PostgreSQL database on the session's server."""
    return pg_server.new_database()
