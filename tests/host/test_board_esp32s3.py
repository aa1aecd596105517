"""Tier 2 for the real board: boards/esp32s3_pn532/board.py, unchanged, on the MicroPython
unix port (128 KiB heap, firmware in ROMFS) through the machine shim (boards/shim)
against the emulated PCB (emu.s3world): PN532 on SPI, two PSAM slots on UARTs with
clock and reset pins, GPS on UART0, DS3231 + SSD1306 on I2C, driver keys, Wi-Fi, the
watchdog. One short day, in order: first boot with a blank RTC, the morning sync over
Wi-Fi (the board dials the depot), a MOT card and a local card, a section ride priced by
the driver key and the GPS, feedback that ends by itself, power loss with the RTC keeping
time, a hung loop reset by the watchdog, the evening sync and the clearing check."""

import json
import os
import threading
import time

import pytest

from depot import station
from emu import issuer, s3world, t0
from emu.i2cbus import framebuf_font
from emu.nor import NorFlash
from emu.psam import Psam
from emu.world import micropython_bin
from validator import errors as E
from validator.app import content
from validator.storage import plan_boards
from validator.storage.params import ParamStore
from validator.sync import auth_host, wire_host
from ykt import sim
from ykt.cmd_sync import accept_port

DEVICE = 0x00000001
TERMINAL = "000008010001"
LINE = 801
# stop positions of line 801 for the GPS (board.json "stops"): ~300 m apart going east
STOPS = [[31.2300, 121.4700 + 0.0032 * i] for i in range(8)]


class Depot:
    """The depot side of the day: registry-less keyring (test master key), a depot
    database, the signed fare table for the morning push (emu.farec, test content key)."""

    def __init__(self, out):
        from depot.client import Keyring
        from depot.db import DepotDB
        from depot.devsim import TEST_CONTENT_KEY, TEST_MASTER
        from emu import farec

        os.makedirs(out, exist_ok=True)
        self.out = out
        self.keys = issuer.load_master_keys()
        self.db = DepotDB(os.path.join(out, "depot.sqlite"))
        self.keyring = Keyring(master=TEST_MASTER)
        scn = sim.load_scenario(sim.DEFAULT_SCENARIO)
        with open(scn["table_path"]) as f:
            tdesc = json.load(f)
        self.city = tdesc.get("city", "2900")
        sign = auth_host.content_signer(TEST_CONTENT_KEY)
        self.fares = farec.container(farec.compile_table(tdesc), sign=sign)
        first = min(sim.dev_seconds(t["at"], scn.get("day")) for t in scn["taps"])
        self.day_start = first - first % 86400 + 5 * 3600  # 05:00 on the scenario's day
        self.cards = {}

    def pushes(self):
        return [(wire_host.K_FARES, "fares", self.fares)]

    def card(self, name, spec):
        c = self.cards.get(name)
        if c is None:
            c = self.cards[name] = sim.make_card(self.keys, name, spec)
        return c

    def export(self):
        """records.csv and the clearing centre's TAC check of every charged record."""
        import csv

        path = os.path.join(self.out, "records.csv")
        self.db.export_csv(path)
        with open(path) as f:
            rows = list(csv.DictReader(f))
        ok = bad = 0
        for r in rows:
            if r.get("status") in ("normal", "recovered"):
                if sim.verify_tac(self.keys, r):
                    ok += 1
                else:
                    bad += 1
        return rows, ok, bad


def provision(path, sim_, line):
    """What `ykt flash provision` writes into the ykt partition: keys and the signed
    configuration (test keys, emu.devsim)."""
    from depot.devsim import TEST_CONTENT_KEY, TEST_CONTENT_PUB, TEST_MASTER

    kd = auth_host.derive_device_key(TEST_MASTER, DEVICE)
    f = NorFlash(s3world.FLASH_SIZE, path=path, invert=True)
    ps = ParamStore(f, plan_boards.PLAN_ESP32S3["params"]).mount()
    ps.put(content.P_KEYS, auth_host.make_keys(DEVICE, kd, TEST_CONTENT_PUB))
    # a 2 s repeat window: the ride below is seconds long, not the half hour of a real one
    cfg = {"city": sim_.city, "line": line, "repeat_window_s": 2, "tear_keep_s": 600}
    ps.put(content.P_CONFIG, auth_host.make_content(TEST_CONTENT_KEY, wire_host.K_CONFIG, 1,
                                                    json.dumps(cfg).encode()))
    f.close()


def free_port():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("s3"))
    s = Depot(os.path.join(out, "depot"))
    keys = s.keys
    term = bytes.fromhex(TERMINAL)
    lterm = b"\x99" + term[1:]
    psams = [t0.T0Card(Psam(keys, terminal_no=term, serial=bytes(4) + term)),
             t0.T0Card(Psam(issuer.local_master_keys(keys), terminal_no=lterm,
                            serial=bytes(4) + lterm, app="local"))]
    port = free_port()
    w = s3world.S3World(os.path.join(out, "bus"), psams, unique_id="a0b1c2d3%08x" % DEVICE,
                        board_cfg={"depot": "127.0.0.1:%d" % port, "retry_s": 1,
                                   "wifi": {"ssid": "depot-7", "key": "test-only"},
                                   "wdt_ms": 3000, "stops": {str(LINE): STOPS}})
    w.depot_port = port
    provision(w.flash_path, s, LINE)
    w.start(timeout=60)
    yield s, w
    w.stop()


def depot_sync(s, w, **kw):
    """The depot listens, the terminus Wi-Fi comes into range, the board dials in."""
    t = threading.Timer(0.3, w.set_network, (True,))
    t.start()
    try:
        p = accept_port("127.0.0.1:%d" % w.depot_port, 30, timeout=0.2)
        try:
            return station.sync_once(p, s.keyring, s.db, **kw)
        finally:
            p.close()
    finally:
        t.join()
        w.set_network(False)


def card(s, name, **spec):
    spec.setdefault("balance", 5000)
    return s.card(name, spec)


@pytest.fixture(scope="module")
def font():
    return framebuf_font(micropython_bin())


def test_esp32s3_when_first_booted_rtc_is_blank_and_both_psams_answer(day):
    s, w = day
    boot = [x for x in w.lines if x.startswith("@BOOT")]
    assert boot == ["@BOOT rtc=-1 cause=1"]  # a new DS3231: oscillator-stopped flag set
    assert w.pins[w.w["PSAM0_RST"]] == 1 and w.pins[w.w["PSAM1_RST"]] == 1
    assert w.pwm[w.w["PSAM0_CLK"]][0] == w.w["PSAM_CLK_HZ"]


def test_esp32s3_morning_sync_over_wifi_sets_clock_and_rtc(day):
    s, w = day
    summary = depot_sync(s, w, pushes=s.pushes(), clock_secs=s.day_start, pull=False)
    assert summary.get("pushed")
    w.wait("CLOCK")
    assert abs(w.rtc.secs() - s.day_start) <= 2  # the battery-backed clock got it too
    assert w.wlan_join


def test_esp32s3_when_mot_card_taps_at_key_set_stop_it_boards(day, font):
    s, w = day
    w.press("NEXT")
    assert w.wait("POS").split() == ["POS", str(LINE), "1", "0", "key"]
    c = card(s, "s3-bob")
    t_tap = time.time()
    reason, amount, balance = w.tap(c, remove=False)
    assert reason == E.R_OK and c.balance == 5000 - amount == balance
    time.sleep(2.3)  # card still in the field: the pattern ends by itself
    bz = [(t, v) for t, k, p, v in w.trace if k == "F" and p == w.w["BUZZER"] and t >= t_tap]
    assert [v for _, v in bz] == [32768, 0]  # one beep...
    assert 0.1 <= bz[1][0] - bz[0][0] <= 0.5  # ...of 150 ms
    green = [(t, v) for t, k, p, v in w.trace if k == "P" and p == w.w["LED_GREEN"]
             and t >= t_tap]
    assert [v for _, v in green] == [1, 0] and w.pins[w.w["LED_RED"]] == 0
    assert 1.3 <= green[1][0] - green[0][0] <= 2.2  # held 1.5 s, then off
    w.field.remove(c)
    s.bob = c


def test_esp32s3_when_gps_reaches_a_stop_the_section_fare_follows(day, font):
    s, w = day
    time.sleep(1)  # past the repeat window (2 s) since the boarding tap
    w.gps.move_to(*STOPS[5])
    w.gps.fix = True
    w.gps_on = True
    assert w.wait("POS", 10).split() == ["POS", str(LINE), "5", "0", "gps"]
    c = s.bob
    before = c.balance
    reason, amount, balance = w.tap(c)
    assert reason == E.R_OK and balance == c.balance
    # the whole ride 1 -> 5 on line 801 costs the matrix fare (default.json), whatever the
    # split between boarding and alighting
    assert 5000 - c.balance == 400, (before, amount)
    time.sleep(0.3)  # the board task redraws within a period or two
    scr = w.screen(font)
    assert scr[0] == "L801 S5 UP" and scr[2] == "PAID"
    assert scr[4] == "FARE %d.%02d" % divmod(amount, 100)
    assert scr[6] == "BAL %d.%02d" % divmod(balance, 100)
    time.sleep(2.0)  # the pattern is over: back to the idle screen
    assert w.screen(font)[3] == "PLEASE TAP"


def test_esp32s3_when_local_card_taps_psam_slot_1_pays(day):
    s, w = day
    c = card(s, "s3-city", app="local", issuer="03002900FFFFFFFF", balance=3000)
    assert w.tap(c)[0] == E.R_OK  # boards at stop 5 (a section line charges at the exit)
    w.press("NEXT")
    w.press("NEXT")
    assert w.wait("POS").split()[2] == "6" and w.wait("POS").split()[2] == "7"
    time.sleep(2.1)  # past the repeat window
    reason, amount, balance = w.tap(c)
    assert reason == E.R_OK and amount == 300 == 3000 - c.balance  # 5 -> 7 on line 801


def test_esp32s3_when_power_is_cut_the_rtc_keeps_time(day):
    s, w = day
    expect = w.rtc.secs()
    w.power_cut()
    time.sleep(1.5)
    w.start(timeout=60)
    boot = [x for x in w.lines if x.startswith("@BOOT")][-1].split()
    rtc = int(boot[1].split("=")[1])
    assert boot[2] == "cause=1"
    assert expect + 1 <= rtc <= expect + 30  # kept counting while the power was off
    # the reboot holds the stored fare table too: the 128 KiB heap still has room
    ready = [x for x in w.lines if x.startswith("@READY")][-1]
    free = int(ready.split("heap_free=")[1])
    assert free >= 6000, ready
    c = card(s, "s3-after-cut")
    assert w.tap(c)[0] == E.R_OK


def test_esp32s3_when_the_loop_hangs_the_watchdog_resets_the_board(day):
    s, w = day
    time.sleep(2.5)  # the last tap's pattern is over and its screen drawn
    w.bus.stuck = True  # a slave holds the I2C bus: the next display redraw never returns
    c = card(s, "s3-hang")
    reason, _, _ = w.tap(c)
    assert reason == E.R_OK  # committed and shown before the loop hung
    w.wait("WDT", 15)
    w.wait("EXIT", 5)
    assert w.wdt_resets == 1
    w.bus.stuck = False
    w.bus.buf = b""
    w.start(timeout=60)
    boot = [x for x in w.lines if x.startswith("@BOOT")][-1]
    assert boot.endswith("cause=3")  # machine.WDT_RESET
    assert w.tap(card(s, "s3-after-wdt"))[0] == E.R_OK


def test_esp32s3_evening_sync_brings_every_record_and_each_tac_verifies(day):
    s, w = day
    summary = depot_sync(s, w, pull=True, faults=True)
    assert summary["records_new"] >= 5
    rows, ok, bad = s.export()
    assert bad == 0 and ok >= 5
    assert {r.get("psam_slot") for r in rows} >= {"0", "1"}
