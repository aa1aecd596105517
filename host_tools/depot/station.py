# depot.station: one complete depot sync of one validator (library behind `ykt sync`).
# SPDX-License-Identifier: MIT
#
#   summary = sync_once(port, keyring, db, pushes=[(kind, name, blob)], clock_secs=...)
# Authenticate, pull every record past the watermark into db (ACK after each commit),
# push the signed containers, set the clock, read INFO, BYE. Raises StationError with
# .stage and .failure (a client.SyncFailure) when something is refused or breaks.
import time

from depot.client import SyncClient, SyncFailure
from validator.sync import wire_host


class StationError(Exception):
    def __init__(self, stage, failure):
        super().__init__("sync %s failed: %s" % (stage, failure))
        self.stage = stage
        self.failure = failure
        self.code = failure.code


def local_secs_since_2000(t=None):
    """Device time: local seconds since 2000-01-01 00:00 (validator.util.bcdtime)."""
    lt = time.localtime(t)
    return int(time.mktime(lt) - time.mktime((2000, 1, 1, 0, 0, 0, 0, 0, lt.tm_isdst)))


def sync_once(port, keyring, db, pushes=(), clock_secs=None, pull=True, faults=False,
              window=4, timeout=3.0, progress=None):
    """-> summary dict. progress(label) -> callable(done, total) or None."""
    started = time.time()
    client = SyncClient(port, keyring, timeout=timeout)
    summary = {}
    stage = "connect"
    try:
        info = client.connect()
        summary["device_id"] = "%08X" % info["device_id"]
        summary["info"] = info
        db.note_device(info)
        if pull:
            stage = "pull"
            new, dup = client.pull(db, window=max(1, min(8, window)),
                                   progress=progress("records") if progress else None)
            summary["records_new"] = new
            summary["records_dup"] = dup
        pushed = []
        for kind, name, blob in pushes:
            what = wire_host.KIND_NAMES[kind]
            stage = "push " + what
            v = client.push(kind, blob, progress=progress(what) if progress else None)
            pushed.append({"kind": what, "file": name, "version": v})
        summary["pushed"] = pushed
        if clock_secs is not None:
            stage = "clock"
            client.set_clock(clock_secs)
            summary["clock_set"] = clock_secs
        if faults:
            stage = "faults"
            summary["faults"] = client.faults().decode("utf-8", "replace").splitlines()
        summary["info_after"] = client.refresh_info()
        db.note_device(summary["info_after"])
        client.bye()
        db.note_sync(client.device_id, started, summary.get("records_new", 0),
                     summary.get("records_dup", 0), "ok")
    except SyncFailure as e:
        if client.tx_mac is not None and e.code is not None and e.code > wire_host.E_PROTO:
            client.bye()  # a refused push leaves a sound session: end it cleanly
        if client.device_id is not None:
            db.note_sync(client.device_id, started, 0, 0, "%s: %s" % (stage, e))
        raise StationError(stage, e)
    summary["bytes_in"] = client.bytes_in
    summary["bytes_out"] = client.bytes_out
    summary["seconds"] = round(time.time() - started, 3)
    return summary
