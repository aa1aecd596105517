# emu.farescen: run a fare scenario (rules/README.md "Scenario file") through the rules.
# SPDX-License-Identifier: MIT
#
# Drives validator.rules.fares.decide() exactly as the transaction engine will (EF15,
# EF17 for visitors, EF1E record 1, EF1A record 2, balance) against emu.farecard cards,
# with no RF and no crypto. It is the fare half of `ykt sim --scenario`: the integrator's
# sim runs the full validator + card/PSAM emulators and must produce the same rows.
# Common subset.
import json

from emu import farec, scenario
from emu.farecard import FareCard
from validator.errors import R_OK, reason_name
from validator.rules import fares, fares_host, table, table_host

DOORS = (("any", fares.DOOR_ANY), ("entry", fares.DOOR_ENTRY), ("exit", fares.DOOR_EXIT))
CSV_COLUMNS = ("seq", "at", "card", "line", "stop", "direction", "door", "reason", "kind",
               "fare", "penalty", "amount", "balance")


def tap_time(at, day):
    """Device seconds of a tap "at": full "YYYY-MM-DDThh:mm:ss" or "hh:mm:ss" on day."""
    if isinstance(at, int):
        return at
    if "T" not in at:
        at = day + "T" + at
    return farec.parse_time(at)


def _door(v):
    for k, n in DOORS:
        if k == v:
            return n
    raise ValueError("door %r" % (v,))


def _terminal(hexstr):
    b = bytes.fromhex(hexstr)
    return bytes(8 - len(b)) + b


def make_card(spec):
    ct = spec.get("type", "normal")
    if not isinstance(ct, int):
        ct = farec._lookup(farec.CARD_TYPES, ct, "card type")
    return FareCard(spec.get("issuer", "02002900FFFFFFFF"), ct, spec.get("balance", 5000),
                    1 if spec.get("interconnect", True) else 0)


def run(table_desc, scenario):
    """Outcome rows (dicts, CSV_COLUMNS) of every validator tap in the scenario."""
    body = farec.compile_table(table_desc)
    ts = table.FareTables()
    day = scenario.get("day")
    first = tap_time(scenario["taps"][0]["at"], day) if scenario["taps"] else 0
    code = ts.offer(body, first)  # unsigned: trust the local file
    if code < 0:
        raise ValueError("fare table refused: %d" % code)
    cards = {}
    for k in scenario["cards"]:
        cards[k] = make_card(scenario["cards"][k])
    res = fares.Decision()
    where = fares.Position()
    rows = []
    for i in range(len(scenario["taps"])):
        tp = scenario["taps"][i]
        now = tap_time(tp["at"], day)
        c = cards[tp["card"]]
        if "foreign" in tp:
            f = tp["foreign"]
            mode = f.get("mode", "rail")
            c.foreign_trip(now, 1 if mode in ("rail", 1) else 2, f.get("type", 4),
                           f.get("line", 0), f.get("station", 0), f.get("amount", 0),
                           int(f.get("city", "2900"), 16), f.get("flags", 0))
            continue
        where.line = tp["line"]
        where.stop = tp.get("stop", 0)
        where.direction = tp.get("direction", 0)
        where.door = _door(tp.get("door", "any"))
        where.terminal[:] = _terminal(tp.get("terminal", "000000000001"))
        tb = ts.current(now)
        # the engine reads EF17 only for visiting cards (one READ BINARY), and the
        # records tb.needs() asks for; here the model simply hands over what it has
        need = tb.needs(where.line) if tb is not None else 0
        local = tb is not None and (c.ef15[2] << 8 | c.ef15[3]) == tb.city
        fares.decide(res, tb, now, where, c.ef15, None if local else c.ef17,
                     c.rec1e() if need & table_host.NEED_1E else None,
                     c.rec1a if need & table_host.NEED_1A else None, c.balance)
        if res.reason == R_OK:
            c.commit(res)
        rows.append({"seq": i, "at": tp["at"], "card": tp["card"], "line": where.line,
                     "stop": where.stop, "direction": where.direction,
                     "door": tp.get("door", "any"), "reason": reason_name(res.reason),
                     "kind": fares_host.KIND_NAMES[res.kind] if res.reason == R_OK else "none",
                     "fare": res.fare if res.reason == R_OK else 0,
                     "penalty": res.penalty if res.reason == R_OK else 0,
                     "amount": res.amount if res.reason == R_OK else 0,
                     "balance": c.balance,
                     "flags": res.flags if res.reason == R_OK else 0,
                     "txtype": res.txtype if res.reason == R_OK else 0})
    return rows


def load(scenario_path):
    """(table description, scenario) from a scenario file; table path is relative to it.
    A file that does not follow emu.scenario's schema is a ValueError naming the place."""
    with open(scenario_path) as f:
        sc = json.load(f)
    e = scenario.check(sc)
    if e:
        raise ValueError("%s: not a scenario: %s" % (scenario_path, e))
    base = scenario_path.rsplit("/", 1)[0] if "/" in scenario_path else "."
    with open(base + "/" + sc["table"]) as f:
        return json.load(f), sc
