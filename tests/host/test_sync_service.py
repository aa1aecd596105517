# test_sync_service: the app-facing helper starts sync tasks from a board config; a depot
# syncs through the TCP listener while a stand-in card loop keeps its 10 ms rhythm.
import asyncio
import socket
import threading

from fw import sync_fixtures as fx

from depot.client import Keyring
from depot.db import DepotDB
from depot.station import sync_once
from validator.sync import service
from ykt.cmd_sync import SocketPort


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def test_service_when_listen_configured_depot_syncs_over_tcp(tmp_path):
    log = fx.real_log_or_none() or fx.MemLog()
    for _ in range(40):
        fx.add_record(log)
    target = fx.make_target(0, log=log)
    port = _free_port()
    import os

    tasks = service.tasks({"listen": port}, target, fx.KEYS, os.urandom, target.clock)
    assert len(tasks) == 1
    out = {}

    def depot():
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        db = DepotDB(str(tmp_path / "d.sqlite"))
        out["summary"] = sync_once(SocketPort(s, 0.05), Keyring(devices={fx.DEVICE_ID: fx.KD}),
                                   db, clock_secs=900000000)
        out["seqs"] = db.seqs(fx.DEVICE_ID)
        s.close()

    async def main():
        t = asyncio.get_running_loop().create_task(tasks[0](None))
        th = threading.Thread(target=depot)
        th.start()
        for _ in range(1000):  # the card loop stand-in: 10 ms ticks until the depot is done
            await asyncio.sleep(0.01)
            if not th.is_alive():
                break
        th.join(1)
        t.cancel()

    asyncio.run(main())
    assert out["seqs"] == list(range(1, 41))
    assert log.acked_seq == 40 and target.clock.secs == 900000000
    assert out["summary"]["records_new"] == 40
