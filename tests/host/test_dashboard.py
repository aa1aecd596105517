# test_dashboard: the fleet dashboard in headless Chromium (Debian's /usr/bin/chromium driven
# by Playwright; no browser is ever downloaded). A station serves a database populated the
# way syncs populate it (records ingested, devices noted); the test reads the page the way a
# person would: which validator is stale, the day's money, how many bars the chart has,
# the anomalies panel. Screenshot: build/dashboard.png. No Chromium = failure, not a skip.
import json
import os
import time

import pytest

from depot.devsim import make_record
from depot.serve import Station, open_db
from validator.storage import record_host as rh

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OK, STALE, NEVER = 0x41000001, 0x41000002, 0x41000003
DAYS_N = 10000  # 20 s apart from 06:00 on 2026-11-24: three days of records


def _info(dev, acked):
    return {"device_id": dev, "rec_size": 128, "firmware": 0x000100, "acked_seq": acked,
            "next_seq": acked + 1, "blacklist_version": 3 if dev == OK else 2,
            "fares_version": 7, "whitelist_version": 0, "config_version": 1}


def _populate(path):
    """OK synced just now, STALE 30 h ago (both with records), NEVER only registered;
    -> {day: (records, paid fen)} by the record codec, the reference for what is shown."""
    db = open_db(path)
    want = {}
    reg = getattr(db, "register_device", None)
    for i, dev in enumerate((OK, STALE, NEVER)):
        if reg is not None:
            reg(dev, bytes(32), "L%d" % (7 + i), "B%04d" % i, "north", 0x000100)
    for dev, n in ((OK, DAYS_N), (STALE, 900)):
        blob = b"".join(bytes(make_record(s)) for s in range(1, n + 1))
        for k in range(0, n, 500):
            db.ingest(dev, 1 + k, 128, blob[k * 128:(k + 500) * 128])
        db.note_device(_info(dev, n))
        for s in range(1, n + 1):
            r = rh.decode(make_record(s))
            d = r["datetime"][:8]
            e = want.setdefault(d, [0, 0])
            e[0] += 1
            e[1] += r["amount"] if r["status"] in ("normal", "recovered") else 0
    if reg is None:  # a database without a registry: the device is known from a failed sync
        db.note_device(_info(NEVER, 0))
        _sql(db, "UPDATE devices SET last_sync=NULL WHERE device_id=?", (NEVER,))
    _sql(db, "UPDATE devices SET last_sync=? WHERE device_id=?",
         (time.time() - 30 * 3600, STALE))
    db.close()
    return want


def _sql(db, sql, args=()):
    if hasattr(db, "execute"):
        db.execute(sql, args)
    else:
        with db.con:
            db.con.execute(sql, args)


def _anomaly(path):
    """One anomaly the way the clearing step records it (depot.clearing creates the table)."""
    db = open_db(path)
    try:
        _sql(db, "CREATE TABLE IF NOT EXISTS anomalies (kind TEXT, device_id INTEGER, "
             "card TEXT, reason TEXT, records TEXT)")
        _sql(db, "INSERT INTO anomalies (kind, device_id, card, reason, records) "
             "VALUES (?,?,?,?,?)", ("ATC_REPEAT", OK, "3104000012345678", "card cloned?", "17,42"))
    finally:
        db.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "depot.sqlite")
    return request.getfixturevalue("pg_url")


def test_dashboard_when_loaded_in_chromium_shows_stale_device_day_total_and_one_bar_per_day(
        db_url):
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), "Debian's chromium is required (apt-get install chromium)"
    path = db_url
    want = _populate(path)
    days = sorted(want)
    assert len(days) == 3
    last = want[days[-1]]
    st = Station(path, listen=None, http="127.0.0.1:0", stale_hours=24).start()
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = b.new_page(viewport={"width": 1280, "height": 1100})
            requests = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(st.url())
            page.wait_for_selector("body[data-loaded='1']", timeout=20000)

            def state(dev):
                return page.inner_text("tr[data-device='%08X'] .state" % dev)

            assert state(OK) == "ok"
            assert state(STALE) == "stale"
            assert state(NEVER) == "never"
            assert "1 stale" in page.inner_text("#states")
            total = "\u00a5{:,.2f}".format(last[1] / 100)
            assert page.inner_text("#day-total") == total
            assert "%s-%s-%s" % (days[-1][:4], days[-1][4:6], days[-1][6:]) in \
                page.inner_text("#day-records")
            assert page.locator("#chart-days svg rect.bar").count() == 3
            heights = [float(page.locator("#chart-days rect.bar").nth(i).get_attribute(
                "height")) for i in range(3)]
            big = max(want[d][1] for d in days)
            assert [round(h) for h in heights] == [
                max(1, round(180 * want[d][1] / big)) for d in days]  # bars to scale
            assert page.inner_text("#anomalies") == "none"
            assert "v3: 1" in page.inner_text("tr[data-kind='blacklist']")
            _anomaly(path)
            page.reload()
            page.wait_for_selector("body[data-loaded='1']", timeout=20000)
            assert page.inner_text("#n-anomalies") == "1"
            assert "ATC_REPEAT" in page.inner_text("#anomaly-table")
            os.makedirs(os.path.join(ROOT, "build"), exist_ok=True)
            page.screenshot(path=os.path.join(ROOT, "build", "dashboard.png"), full_page=True)
            b.close()
    finally:
        st.stop()
    # everything came from the station itself: no CDN, no fonts, nothing downloaded
    assert requests and all(u.startswith(st.url()) for u in requests), requests


def test_dashboard_when_operator_approves_a_proposal_it_is_stored_with_the_name_and_pending_counts_clearing(  # noqa: E501
        tmp_path):
    from playwright.sync_api import sync_playwright

    from depot import clearing, risk

    path = str(tmp_path / "depot.sqlite")
    want = _populate(path)
    db = open_db(path)
    clearing.ensure_schema(db)
    card = "31040000123456780000"
    db.execute("INSERT INTO anomalies (id, akey, kind, reason, device_id, card, detail, "
               "records, cleared_day, created, status) VALUES (1, 'k1', 'card', "
               "'TWO_VEHICLES', ?, ?, 'two buses 40 s apart', '[]', '2026-11-24', '', 'open')",
               (OK, card))
    assert [p["card"] for p in risk.propose(db)] == [card]
    for seq, state in ((7, "open"), (8, "resolved"), (9, "resolved")):
        db.execute("INSERT INTO gray_records (device_id, seq, card, state) VALUES (?,?,?,?)",
                   (OK, seq, card, state))
    # a business day cleared 100 paid records of OK (its summary, as clear_day stores it):
    # pending is the rest
    paid = [r for r in db.decoded(OK) if r["status"] in ("normal", "recovered")][:100]
    db.execute("INSERT INTO clearing_days (day, created, summary) VALUES (?, ?, ?)",
               ("2026-11-24", "", json.dumps({"verdicts": {"cleared": 100},
                                              "cleared_fen": sum(r["amount"] for r in paid)})))
    total_fen = sum(v[1] for v in want.values())
    db.close()
    st = Station(path, listen=None, http="127.0.0.1:0", stale_hours=24).start()
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = b.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(st.url())
            page.wait_for_selector("body[data-loaded='1']", timeout=20000)
            left = total_fen - sum(r["amount"] for r in paid)
            assert page.inner_text("#pending-amount") == "\u00a5{:,.2f}".format(left / 100)
            assert page.inner_text("#n-gray-open") == "1"
            assert page.inner_text("#grays") == "1 open \u00b7 2 resolved"
            row = page.locator("tr[data-proposal='1']")
            assert row.locator(".pstate").inner_text() == "proposed"
            row.locator("button.approve").click()  # no operator named: refused on the page
            assert "name the operator" in page.inner_text("#station")
            page.fill("#operator", "Wang Fang")
            row.locator("button.approve").click()
            page.wait_for_function("document.querySelector(\"tr[data-proposal='1'] .pstate\")"
                                   ".textContent === 'approved'", timeout=10000)
            assert row.locator("button").count() == 0
            b.close()
    finally:
        st.stop()
    db = open_db(path)
    try:
        (pr,) = risk.proposals(db)
        assert (pr["state"], pr["approved_by"]) == ("approved", "Wang Fang")
    finally:
        db.close()
