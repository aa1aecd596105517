"""Clearing benchmark (host_tools/depot/CLEARING.md "Speed"): a generated bus-company day --
every tap a gray record then its normal record (REF_SEQ), as the tap engine writes them --
encoded with the registry-derived record encoder (depot.clearing.encode, the inverse of
record_host.decode) with real TACs from the TEST master keys (both families, 3DES and SM4;
a sample re-checked against the pure-Python reference emu.crypto), ingested through
DepotDB.ingest like a sync, then cleared: decode + TAC verify + gray matching + anomaly
checks + exports + the database writes.

  clearing_records_per_s       records cleared per second (SQLite; a 20 000-record day)
  clearing_records_per_s_pg    the same on PostgreSQL ($YKT_BENCH_PG_URL, else a
                               throwaway Debian server started by depot.pgtemp)
  clearing_1m_records_s        seconds to clear a 1 000 000-record day (SQLite)
  clearing_tac_per_s           key-service TAC checks per second alone (fast engine)
  clearing_tac_reference_per_s the pure-Python reference engine (emu.crypto), for scale
"""

import os
import shutil
import tempfile
import time

from depot import clearing, keyservice

CITIES = ("02002900ffffffff", "02002900ffffffff", "02002900ffffffff", "01011000ffffffff",
          "02003100ffffffff", "01011121ffffffff")


def gen_day(n_records, ks, n_devices=None, day="20260302"):
    """-> {device_id: [record images]}: n_records // 2 taps, each gray + normal."""
    taps = n_records // 2
    n_devices = n_devices or max(1, taps // 400)  # ~400 taps per bus
    n_cards = max(1, taps // 3)  # three rides per card and day
    cards = []
    for c in range(n_cards):
        slot = 1 if c % 10 == 9 else 0  # one card in ten: the city's own (local) card
        iss = "03002900ffffffff" if slot else CITIES[c % len(CITIES)]
        cards.append({"card_serial": "0310%016d" % c, "issuer_id": iss, "psam_slot": slot,
                      "alg_id": "04" if c % 5 == 4 else "00", "atc": c % 500,
                      "balance": 100000 + c % 9000})
    out = {}
    seq = {}
    for t in range(taps):
        card = cards[(t * 7919) % n_cards]
        dev = 0x00120001 + t % n_devices
        s = seq.get(dev, 0) + 1
        secs = 6 * 3600 + t * 16 * 3600 // taps  # 06:00 .. 22:00, in tap order
        hms = "%02d%02d%02d" % (secs // 3600, secs // 60 % 60, secs % 60)
        amount = 200 if t % 4 else 100
        d = {"device_id": "%08x" % dev, "card_serial": card["card_serial"],
             "issuer_id": card["issuer_id"], "txn_type": "09", "alg_id": card["alg_id"],
             "key_version": "01", "amount": amount, "balance_before": card["balance"],
             "balance_after": card["balance"] - amount, "atc": card["atc"],
             "terminal_no": "0000%08x" % dev, "ttsn": "%08x" % (s + 1), "datetime": day + hms,
             "psam_slot": card["psam_slot"], "line": 12, "station": t % 30, "fare_list": 200}
        lst = out.setdefault(dev, [])
        lst.append(clearing.encode(dict(d, status="gray"), s))
        d["tac"] = ks.compute_tac(d).hex()
        lst.append(clearing.encode(dict(d, status="normal", ref_seq=s), s + 1))
        seq[dev] = s + 1
        card["atc"] += 1
        card["balance"] -= amount
    return out


def _check_sample(day, ref, n=60):
    bad = 0
    for lst in list(day.values())[:3]:
        for img in lst[1 : 2 * n : 2]:
            if ref.verify_tac(clearing.decode(img)) != (True, None):
                bad += 1
    if bad:
        raise RuntimeError("generated TACs differ from emu.crypto: %d" % bad)


def _ingest(db, day):
    for dev, lst in day.items():
        for i in range(0, len(lst), 5000):
            db.ingest(dev, 1 + i, 128, b"".join(lst[i : i + 5000]))


def _clear_once(db, ks, out):
    t = time.perf_counter()
    s = clearing.clear_day(db, "2026-03-02", ks, out, city="2900")
    dt = time.perf_counter() - t
    if s["tac_verified"] != s["paid_records"] or s["gray_states"].get("open"):
        raise RuntimeError("bench day did not clear cleanly: %s" % s)
    return dt, s


def _pg_db():
    """PostgreSQL: $YKT_BENCH_PG_URL when set (use an empty database), else a throwaway
    server of Debian's binaries (depot.pgtemp); -> (db, server or None, why not)."""
    from depot import db as dbmod
    from depot import pgtemp

    url = os.environ.get("YKT_BENCH_PG_URL")
    srv = None
    try:
        if not url:
            srv = pgtemp.PgServer.start()
            if srv is None:
                return None, None, "no PostgreSQL binaries (apt-get install postgresql)"
            url = srv.new_database()
        return dbmod.open_db(url), srv, None
    except Exception as e:  # unreachable server, bad URL: report, do not fail the bench
        if srv is not None:
            srv.stop()
        return None, None, "PostgreSQL not reachable: %s" % e


def run(ctx):
    r = {}
    ks = keyservice.TestKeyService()
    ref = keyservice.TestKeyService(engine="reference")
    tmp = tempfile.mkdtemp(prefix="bench_clearing_")
    try:
        small = gen_day(20000 if not ctx.quick else 4000, ks)
        _check_sample(small, ref)
        recs = [clearing.decode(x) for lst in small.values() for x in lst[1:400:2]]
        t = time.perf_counter()
        for x in recs:
            ks.verify_tac(x)
        r["clearing_tac_per_s"] = round(len(recs) / (time.perf_counter() - t))
        t = time.perf_counter()
        for x in recs[:100]:
            ref.verify_tac(x)
        r["clearing_tac_reference_per_s"] = round(100 / (time.perf_counter() - t))

        db = clearing.open_database(os.path.join(tmp, "small.sqlite"))
        _ingest(db, small)
        n = sum(len(v) for v in small.values())
        dt, s = _clear_once(db, keyservice.TestKeyService(), os.path.join(tmp, "out-small"))
        r["clearing_records_per_s"] = round(n / dt)
        r["clearing_small_day_records"] = n
        r["clearing_small_split_s"] = s["seconds"]
        db.close()

        pg, srv, why = _pg_db()
        if pg is not None:
            try:
                _ingest(pg, small)
                dt, _ = _clear_once(pg, keyservice.TestKeyService(), os.path.join(tmp, "o-pg"))
                r["clearing_records_per_s_pg"] = round(n / dt)
            finally:
                pg.close()
                if srv is not None:
                    srv.stop()
        else:
            r["clearing_records_per_s_pg"] = None
            r["clearing_pg_note"] = why

        big_n = 1000000 if not ctx.quick else 100000
        t = time.perf_counter()
        big = gen_day(big_n, ks)
        r["clearing_1m_generate_s"] = round(time.perf_counter() - t, 1)
        db = clearing.open_database(os.path.join(tmp, "big.sqlite"))
        t = time.perf_counter()
        _ingest(db, big)
        r["clearing_1m_ingest_s"] = round(time.perf_counter() - t, 1)
        del big
        dt, s = _clear_once(db, keyservice.TestKeyService(), os.path.join(tmp, "out-big"))
        key = "clearing_1m_records_s" if big_n == 1000000 else "clearing_100k_records_s"
        r[key] = round(dt, 1)
        r["clearing_1m_split_s"] = s["seconds"]
        db.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return r
