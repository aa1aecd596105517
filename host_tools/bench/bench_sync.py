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
Frame crypto (PROTOCOL.md section 3.4), callgrind instructions (Ir) of the MicroPython part of
the unix port at -X heapsize=128k, per full RECORDS frame (2048-byte payload), as
(I_2N - I_N) / N so start-up cancels out (no valgrind: these are left out):
  sync_frame_crypto_instr  AES-128-CTR encrypt (ctr.Ctr over cryptolib's ECB, two counter
                           blocks per call, in the session's 512-byte slices) + HMAC + CRC:
                           what a frame costs now
  sync_frame_mac_instr     HMAC + CRC only: what a frame cost before encryption
  sync_frame_crypto_ms_mcu sync_frame_crypto_instr cycles at 240 MHz (1 x86 instruction ~
                           1 Xtensa cycle, bench_txn's assumption), spread over 4 steps
  sync_crypt_slice_instr   one 512-byte encryption slice: the most one step adds
  sync_cipher_heap_bytes   heap a session's two MAC + cipher objects (ctr.Ctr, made at
                           AUTH) take beyond the two MACs (auth.Hmac) a session held before
                           (the AES contexts; plus the ctr module itself while a session
                           lasts, not counted here)
  sync_frame_crypto_alloc_bytes  heap allocated per frame by the cipher (0: buffers are
                           preallocated)
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
_MCU_HZ = 240e6

_CRYPTO = r"""
import gc, sys
from validator.sync import auth, ctr, wire
mode, k = sys.argv[1], int(sys.argv[2])
buf = bytearray(2079)
mv = memoryview(buf)
for i in range(2048):
    buf[11 + i] = i & 0xFF
tm, rm, tk, rk = auth.session_keys(b"k" * 32, b"h" * 16, b"d" * 16, True)
nonce = bytearray(32)
gc.collect()
a0 = gc.mem_alloc()
hm = (auth.Hmac(tm), auth.Hmac(rm))  # a session's MACs before encryption
gc.collect()
a1 = gc.mem_alloc()
tx = ctr.Ctr(1, tk, tm, nonce)  # the session's MAC + cipher objects now
rx = ctr.Ctr(2, rk, rm, nonce)
gc.collect()
print("HEAP", (gc.mem_alloc() - a1) - (a1 - a0))
tm = hm[0]
tx.begin(1, mv, 11, 11 + 2048)
while not tx.run(512):
    pass
a1 = gc.mem_alloc()
tx.begin(2, mv, 11, 11 + 2048)
while not tx.run(512):
    pass
print("ALLOC", gc.mem_alloc() - a1)
tx.begin(3, mv, 11, 11 + 512)
tx.run(512)
for seq in range(k):
    if mode == "enc":
        tx.begin(seq + 4, mv, 11, 11 + 2048)
        while not tx.run(512):
            pass
        wire.encode(mv, 0x11, 4, seq + 4, 2048, tx)
    elif mode == "slice":
        tx.begin(seq + 4, mv, 11, 11 + 512)
        tx.run(512)
    else:
        wire.encode(mv, 0x11, 0, seq + 4, 2048, tm)
print("OK", k)
"""


def _crypto(ctx):
    """The frame crypto figures (module doc); {} without valgrind."""
    from bench import run_mp

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "crypto.py")
        with open(path, "w") as f:
            f.write(_CRYPTO)
        cmd = [ctx.micropython, "-X", "heapsize=128k", path]
        _, keys, p = run_mp(ctx, cmd + ["enc", "1"], 120)
        if keys.get("OK") != 1:
            raise RuntimeError("bench_sync crypto: %s" % p.stderr[-500:])
        out = {"sync_cipher_heap_bytes": keys["HEAP"],
               "sync_frame_crypto_alloc_bytes": keys["ALLOC"]}
        if not shutil.which("valgrind"):
            print("bench_sync: no valgrind, no sync_frame_*_instr", file=sys.stderr)
            return out
        n = 4 if ctx.quick else 16
        per = {}
        for mode in ("enc", "mac", "slice"):
            ir = {}
            for k in (n, 2 * n):
                i, keys, p = run_mp(ctx, cmd + [mode, str(k)], 300, True)
                if not i or keys.get("OK") != k:
                    raise RuntimeError("bench_sync crypto %s %d: %s" % (mode, k, p.stderr[-300:]))
                ir[k] = i
            per[mode] = (ir[2 * n] - ir[n]) / n
    out["sync_frame_crypto_instr"] = int(round(per["enc"]))
    out["sync_frame_mac_instr"] = int(round(per["mac"]))
    out["sync_crypt_slice_instr"] = int(round(per["slice"]))
    out["sync_frame_crypto_ms_mcu"] = round(per["enc"] / _MCU_HZ * 1e3, 2)
    return out


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
        res.update(_crypto(ctx))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return res
