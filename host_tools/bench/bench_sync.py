"""bench_sync: sync protocol vs mpremote through one paced pty line.

One LineEmulator (two ptys and a relay that releases bytes at 115 200 baud 8N1, i.e. 11 520
bytes/s) carries, one after the other:
  * a MicroPython (-X heapsize=128k) validator sync endpoint (depot.devsim: the real
    validator.sync Session as an asyncio task beside a tap task) pulled by the depot client;
  * a MicroPython REPL, from which `mpremote connect /dev/pts/N resume fs cp` pulls a file
    holding the same record bytes.
Then an unpaced run measures records per second and the worst tap delay the sync task
caused. Metrics:
  sync_bytes_per_s        record payload bytes / pull time, paced line
  mpremote_bytes_per_s    same bytes / `mpremote ... fs cp` wall time, same line
  sync_vs_mpremote        ratio (goal >= 5)
  sync_line_efficiency    sync_bytes_per_s / 11 520 (goal >= 0.9); above 1 because records
                          are delta-coded on the line (PROTOCOL.md section 6)
  sync_line_efficiency_uncompressed   the same with plain RECORDS (framing + window only)
  sync_line_utilisation   line bytes / s / 11 520 during the compressed pull
  sync_records_per_s      unpaced pty, records pulled per second
  sync_max_tap_delay_ms   worst lateness of a 10 ms tap tick while syncing (unpaced; it
                          includes host scheduling noise from the relay and the client)
  sync_max_step_us        longest single Session.step() in that run (what sync can cost
                          the card loop at most, on this host)
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

BAUD = 115200
LINE_BPS = BAUD / 10.0  # 8N1: 10 bit times per byte


def _devsim(ctx, tty, records, tap_ms=0, seconds=120):
    return subprocess.Popen(
        [ctx.micropython, "-X", "heapsize=128k", "-m", "depot.devsim", "--tty", tty,
         "--records", str(records), "--tap-ms", str(tap_ms), "--seconds", str(seconds)],
        env=ctx.mpenv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _devsim_result(p):
    out = p.communicate(timeout=60)[0]
    for line in out.splitlines():
        if line.startswith("DEVSIM {"):
            return json.loads(line[7:])
    raise RuntimeError("devsim failed:\n" + out)


def _pull(host_path, db_path, compress=True):
    """-> (records, record bytes, seconds of the PULL phase, line bytes in)."""
    from depot.client import Keyring, SyncClient
    from depot.db import DepotDB
    from depot.devsim import TEST_MASTER
    from ykt.cmd_sync import open_port

    port = open_port(host_path, BAUD)
    db = DepotDB(db_path)
    c = SyncClient(port, Keyring(master=TEST_MASTER), timeout=5.0)
    c.connect()
    rs = c.info["rec_size"]
    b0 = c.bytes_in
    t0 = time.monotonic()
    new, dup = c.pull(db, window=4, compress=compress)
    dt = time.monotonic() - t0
    wire_in = c.bytes_in - b0
    c.bye()
    port.close()
    db.close()
    return new, new * rs, dt, wire_in


def _mpremote(ctx, le, path, size, out):
    """Pull `path` with mpremote from a MicroPython REPL on the device end of the line."""
    mpremote = shutil.which("mpremote") or os.path.join(os.path.dirname(sys.executable),
                                                        "mpremote")
    repl = subprocess.Popen([ctx.micropython, "-X", "heapsize=128k"], stdin=le.sa,
                            stdout=le.sa, stderr=le.sa, env=ctx.mpenv)
    try:
        time.sleep(0.5)  # banner
        t0 = time.monotonic()
        r = subprocess.run(
            [mpremote, "connect", le.host_path, "resume", "fs", "cp", ":" + path, out],
            capture_output=True, text=True, timeout=300,
        )
        dt = time.monotonic() - t0
        if r.returncode != 0:
            raise RuntimeError("mpremote failed: %s %s" % (r.stdout, r.stderr))
    finally:
        repl.kill()
        repl.wait()
    with open(out, "rb") as f:
        if len(f.read()) != size:
            raise RuntimeError("mpremote copy has the wrong size")
    return dt


def run(ctx):
    from depot.devsim import make_record
    from depot.linesim import LineEmulator

    n_paced = 150 if ctx.quick else 400  # 128-byte records: 19 / 51 KB over the paced line
    n_fast = 2000 if ctx.quick else 6000
    res = {}
    tmp = tempfile.mkdtemp(prefix="bench_sync_")
    try:
        with LineEmulator(BAUD) as le:
            dev = _devsim(ctx, le.device_path, n_paced)
            time.sleep(0.5)
            n, nbytes, dt, wire_in = _pull(le.host_path, os.path.join(tmp, "paced.sqlite"))
            _devsim_result(dev)
            if n != n_paced:
                raise RuntimeError("paced pull moved %d of %d records" % (n, n_paced))
            sync_bps = nbytes / dt
            res["sync_line_utilisation"] = round(wire_in / dt / LINE_BPS, 3)
            # the same pull without record delta coding: what framing + windowing alone give
            dev = _devsim(ctx, le.device_path, n_paced)
            time.sleep(0.5)
            n, nbytes, dt, _ = _pull(le.host_path, os.path.join(tmp, "raw.sqlite"), False)
            _devsim_result(dev)
            res["sync_line_efficiency_uncompressed"] = round(nbytes / dt / LINE_BPS, 3)
            path = os.path.join(tmp, "records.bin")
            with open(path, "wb") as f:
                for s in range(1, n_paced + 1):
                    f.write(bytes(make_record(s)))
            mp_dt = _mpremote(ctx, le, path, nbytes, os.path.join(tmp, "copy.bin"))
            mp_bps = nbytes / mp_dt
        with LineEmulator(None) as le:
            dev = _devsim(ctx, le.device_path, n_fast, tap_ms=10)
            time.sleep(0.5)
            n, nbytes, dt, _ = _pull(le.host_path, os.path.join(tmp, "fast.sqlite"))
            r = _devsim_result(dev)
        res["sync_records_per_s"] = round(n / dt)
        res["sync_max_tap_delay_ms"] = r["max_tap_delay_ms"]
        res["sync_max_step_us"] = r["max_step_us"]
        res["sync_bytes_per_s"] = round(sync_bps)
        res["mpremote_bytes_per_s"] = round(mp_bps)
        res["sync_vs_mpremote"] = round(sync_bps / mp_bps, 2)
        res["sync_line_efficiency"] = round(sync_bps / LINE_BPS, 3)
        res["sync_bench_record_bytes"] = n_paced * 128
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return res
