# fare_oracle: independent reference fare calculator (plain CPython) for scenarios.
# SPDX-License-Identifier: MIT
#
# Recomputes every tap of a scenario (rules/README.md "Scenario file") from the JSON fare
# table and a high-level model of each card (last ride, open boarding, daily total) —
# no binary table, no record bytes, no code shared with validator.rules. Tests and the
# `make sim` check compare the validator's outcomes against this. The rules it encodes are
# the prose of rules/FORMAT.md §Semantics, restated here on purpose.
import datetime as _dt
import json
import os

EPOCH = _dt.datetime(2000, 1, 1)
TYPE_NAMES = {"normal": 0, "senior": 1, "student": 2, "staff": 3, "disabled": 0x11, "any": 0xFF}
DOORS = {"any": 0, "entry": 1, "exit": 2}


def dev_seconds(text, day=None):
    """Device seconds from "YYYY-MM-DDThh:mm:ss", or "hh:mm:ss" on `day` (YYYY-MM-DD)."""
    if isinstance(text, int):
        return text
    if "T" not in text:
        text = day + "T" + text
    return int((_dt.datetime.fromisoformat(text) - EPOCH).total_seconds())


def _code(v):
    return 0xFFFF if v == "any" else int(v, 16)


def _ctype(v):
    return v if isinstance(v, int) else TYPE_NAMES[v]


class Oracle:
    def __init__(self, table):
        self.t = table
        self.city = int(table["city"], 16)
        self.lines = {ln["id"]: ln for ln in table["lines"]}
        self.xf = table.get("transfer", {})
        self.tp = table.get("tapoff", {})
        self.cap = table.get("cap", {}).get("daily", 0)
        hh, mm = table.get("cap", {}).get("day_start", "00:00").split(":")
        self.day_start = int(hh) * 3600 + int(mm) * 60

    # -- table semantics --
    def line_max(self, ln):
        if not ln.get("stops"):
            return ln["fare"]
        return max(max(row) for row in ln["matrix"])

    def section(self, ln, a, b):
        n = ln["stops"]
        if not (0 <= a < n and 0 <= b < n):
            return self.line_max(ln)
        a, b = min(a, b), max(a, b)
        row = ln["matrix"][a]
        return row[b] if len(row) == n else row[b - a]

    def policy(self, ctype, local):
        scope = "local" if local else "visiting"
        for p in self.t.get("policies", []):
            if _ctype(p.get("type", "any")) in (ctype, 0xFF) and p.get("scope", "any") in (
                    scope, "any"):
                return p
        return {"pay": "percent", "value": 100, "transfer": True, "cap": True}

    @staticmethod
    def price(p, base):
        pay = p.get("pay", "percent")
        if pay == "free":
            return 0
        if pay == "fixed":
            return min(p.get("value", 0), base)
        return base * p.get("value", 100) // 100  # round down

    def accepted(self, org, city):
        for a in self.t.get("accept", []):
            if _code(a.get("org", "any")) in (org, 0xFFFF) and _code(
                    a.get("city", "any")) in (city, 0xFFFF):
                return True
        return False

    def discount(self, fare):
        k, v = self.xf.get("kind", "none"), self.xf.get("value", 0)
        return {"none": 0, "free": fare, "amount_off": min(v, fare),
                "percent_off": fare * v // 100}[k]

    def transfer_from(self, last, now, ln, terminal):
        if last is None or last["used"]:
            return False
        if not 0 <= now - last["t"] <= self.xf.get("window_s", 0):
            return False
        if last["city"] != self.city and not self.xf.get("other_city"):
            return False
        mode = 1 if ln.get("mode", "bus") in ("rail", 1) else 2
        if last["industry"] != mode or last["line"] != ln["id"]:
            return True
        return bool(self.xf.get("same_line_other_vehicle")) and last["terminal"] != terminal

    def service_day(self, now):
        return (now - self.day_start) // 86400

    # -- one tap --
    def tap(self, card, now, line, stop, door, terminal):
        out = {"fare": 0, "penalty": 0, "amount": 0, "kind": "none"}
        ln = self.lines.get(line)
        if ln is None:
            return dict(out, reason="no_tariff")
        local = card["city"] == self.city
        if not local:
            if not self.accepted(card["org"], card["city"]):
                return dict(out, reason="issuer_not_accepted")
            if not card["interconnect"]:
                return dict(out, reason="not_interconnect")
        p = self.policy(card["type"], local)
        if p.get("pay") == "refuse":
            return dict(out, reason="card_type_refused")
        mx = self.line_max(ln)
        op = card["open"]
        acc = card["acc"]
        day = self.service_day(now)
        total = acc["total"] if acc and acc["day"] == day and acc["city"] == self.city else 0
        count = acc["count"] if acc and acc["day"] == day and acc["city"] == self.city else 0
        if not ln.get("stops"):
            ev = "single"
        else:
            match = (op is not None and op["line"] == line
                     and 0 <= now - op["t"] <= self.tp.get("window_s", 10800))
            if match and door != 2 and op["stop"] == stop:
                return dict(out, reason="already_paid")
            if door == 1:
                ev = "board"
            elif door == 2:
                ev = "alight" if match else "no_entry"
            else:
                ev = "alight" if match else "board"
        penalty = 0
        if op is not None and ev != "alight" and self.tp.get("missing",
                                                             "charge_max") == "charge_max":
            penalty = op["max"]
        base = {"single": mx, "board": 0, "no_entry": mx}.get(ev)
        if ev == "alight":
            base = self.section(ln, op["stop"], stop)
        kind = {"single": "flat", "board": "board", "alight": "section",
                "no_entry": "no_entry"}[ev]
        fare = self.price(p, base)
        if p.get("pay") == "free":
            kind = "free"
        used = False
        reserve = False
        can_xfer = self.xf.get("kind", "none") != "none" and p.get("transfer", True)
        if can_xfer and ev != "no_entry":
            if ev == "alight":
                ok = op["reserved"]
            else:
                ok = self.transfer_from(card["last"], now, ln, terminal)
            if ok and ev == "board":
                reserve = self.price(p, mx) > 0
                used = reserve
            elif ok:
                d = self.discount(fare)
                if d > 0:
                    fare -= d
                    used = True
                    if kind != "free":
                        kind = "transfer"
        if self.cap and p.get("cap", True):
            room = max(0, self.cap - total)
            if fare > room:
                fare = room
                if kind not in ("free", "board"):
                    kind = "capped"
        amount = fare + penalty
        need = amount
        if ev == "board" and self.tp.get("board_needs_max"):
            need += self.price(p, mx)
        if card["balance"] < need:
            return dict(out, reason="insufficient_balance")
        # commit the ride into the card model
        card["balance"] -= amount
        mode = 1 if ln.get("mode", "bus") in ("rail", 1) else 2
        card["last"] = {"t": now, "industry": mode, "line": line, "city": self.city,
                        "used": used, "terminal": terminal}
        writes_1a = bool(ln.get("stops")) or bool(self.cap) or op is not None
        if writes_1a:
            card["open"] = None
            if ev == "board":
                card["open"] = {"line": line, "stop": stop, "t": now,
                                "max": self.price(p, mx), "reserved": reserve}
            card["acc"] = {"day": day, "city": self.city, "total": total + fare,
                           "count": count + (0 if ev == "board" else 1)}
        return {"reason": "ok", "kind": kind, "fare": fare, "penalty": penalty,
                "amount": amount}


def new_card(spec):
    issuer = spec.get("issuer", "02002900FFFFFFFF")
    return {"org": int(issuer[0:4], 16), "city": int(issuer[4:8], 16),
            "type": _ctype(spec.get("type", "normal")), "balance": spec.get("balance", 5000),
            "interconnect": bool(spec.get("interconnect", True)),
            "last": None, "open": None, "acc": None}


def run(table, scenario):
    """Outcome rows (dicts) for every tap of a scenario against a JSON table."""
    o = Oracle(table)
    cards = {k: new_card(v) for k, v in scenario["cards"].items()}
    rows = []
    for i, tap in enumerate(scenario["taps"]):
        now = dev_seconds(tap["at"], scenario.get("day"))
        c = cards[tap["card"]]
        if "foreign" in tap:
            f = tap["foreign"]
            c["balance"] -= f.get("amount", 0)
            ty = f.get("type", 4)
            c["last"] = None if ty not in (3, 4, 6) else {
                "t": now, "industry": 1 if f.get("mode", "rail") in ("rail", 1) else 2,
                "line": f.get("line", 0), "city": int(f.get("city", "2900"), 16),
                "used": bool(f.get("flags", 0) & 1), "terminal": None}
            continue
        term = tap.get("terminal", "000000000001")
        r = o.tap(c, now, tap["line"], tap.get("stop", 0), DOORS[tap.get("door", "any")],
                  term.rjust(16, "0"))
        r.update(seq=i, card=tap["card"], balance=c["balance"])
        rows.append(r)
    return rows


def load(scenario_path):
    with open(scenario_path) as f:
        sc = json.load(f)
    tpath = os.path.join(os.path.dirname(scenario_path), sc["table"])
    with open(tpath) as f:
        return json.load(f), sc
