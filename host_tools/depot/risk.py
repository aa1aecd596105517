# depot.risk: the risk loop -- anomalies propose cards, an operator approves, the station
# publishes the next signed blacklist (CLEARING.md "Risk loop").
# SPDX-License-Identifier: MIT
#
#   propose(db)                      open anomalies of the chosen reasons -> one proposal a card
#   approve(db, ids, by="name")      an operator's decision (CLI: ykt depot blacklist approve)
#   publish(db)                      next version: a full list and a delta against the previous
#                                    version, signed, stored with db.publish()
#   content_for(db, device_version)  what a station pushes to a device at that version
# Signing goes through sign_content(): depot.content, the back office's signer.
import json
import struct
import time

from depot import anomalies as A
from depot import clearing
from validator.storage import blacklist as bl
from validator.storage import blacklist_host
from validator.sync import auth_host, wire_host

KIND_FULL = "blacklist"  # published kinds (db.publish): the station's content name
KIND_DELTA = "blacklist-delta"


def sign_content(wire_kind, version, body, content_key=None):
    """The one place a blacklist is signed: the back office's signer (depot.content)."""
    from depot import content as C  # noqa: N812

    return C.sign_content(wire_kind, version, body, content_key)


def card_key(serial_hex):
    """8-byte blacklist key of a 20-digit application serial (storage FORMAT.md §5)."""
    k = bytearray(8)
    bl.key_of(bytes.fromhex(serial_hex), k)
    return bytes(k)


# -- published content: the station's own table (depot.db publish / latest) -------------
def _publish(s, kind, version, blob):
    return s.publish(kind, version, blob)


def latest(db, kind):
    """-> (version, blob) of the newest published content of kind, or None."""
    return clearing.store(db).latest(kind)


def list_keys(blob):
    """The keys of a full blacklist container (signature not checked: our own content)."""
    x = auth_host.unwrap_content(blob)
    if x is None:
        return []
    _, _, body = x
    n = struct.unpack_from(">I", body, 0)[0]
    return [bytes(body[4 + 8 * i : 12 + 8 * i]) for i in range(n)]


# -- proposals ------------------------------------------------------------------------------
_COLS = ("id", "card", "reason", "anomaly_ids", "state", "created", "approved_by", "decided",
         "version")


def proposals(db, state=None):
    s = clearing.ensure_schema(db)
    q, args = "SELECT %s FROM blacklist_proposals" % ", ".join(_COLS), ()
    if state:
        q, args = q + " WHERE state = ?", (state,)
    out = [dict(zip(_COLS, r, strict=True))
           for r in clearing._tuples(s.query(q + " ORDER BY id", args))]
    for p in out:
        p["anomaly_ids"] = json.loads(p["anomaly_ids"] or "[]")
    return out


def propose(db, reasons=None):
    """One proposal per card with open anomalies of the chosen reasons (default: those
    REASONS marks as proposing) and no pending/approved proposal; -> new proposals."""
    s = clearing.ensure_schema(db)
    reasons = set(reasons or A.PROPOSE_DEFAULT)
    bad = reasons - set(A.REASONS) - set(A.KINDS)
    if bad:
        raise ValueError("unknown reason codes %s (depot.anomalies.REASONS)" % sorted(bad))
    busy = {p["card"] for p in proposals(db) if p["state"] in ("proposed", "approved")}
    per_card = {}
    for a in clearing.list_anomalies(db, status="open"):
        if a["card"] and (a["reason"] in reasons or a["kind"] in reasons) and \
                a["card"] not in busy:
            per_card.setdefault(a["card"], []).append(a)
    new = []
    with s.transaction():
        top = clearing._tuples(s.query("SELECT MAX(id) FROM blacklist_proposals"))[0][0] or 0
        for card, lst in sorted(per_card.items()):
            top += 1
            why = ",".join(sorted({a["reason"] for a in lst}))
            ids = [a["id"] for a in lst]
            s.execute("INSERT INTO blacklist_proposals (id, card, reason, anomaly_ids, state, "
                      "created) VALUES (?,?,?,?,?,?)",
                      (top, card, why, json.dumps(ids), "proposed", clearing._now_iso()))
            s.executemany("UPDATE anomalies SET status = ? WHERE id = ?",
                          [("proposed", i) for i in ids])
            new.append({"id": top, "card": card, "reason": why, "anomaly_ids": ids})
    return new


def decide(db, ids, by, approve=True):
    """Approve (or reject) proposals by id or card number; -> the proposals changed."""
    if not by:
        raise ValueError("an approval names the operator (--by)")
    s = clearing.ensure_schema(db)
    want = {str(i) for i in ids}
    out = []
    with s.transaction():
        for p in proposals(db, "proposed"):
            if str(p["id"]) in want or p["card"] in want:
                st = "approved" if approve else "rejected"
                s.execute("UPDATE blacklist_proposals SET state=?, approved_by=?, decided=? "
                          "WHERE id=?", (st, by, clearing._now_iso(), p["id"]))
                s.executemany("UPDATE anomalies SET status = ? WHERE id = ?",
                              [(st, i) for i in p["anomaly_ids"]])
                out.append(dict(p, state=st, approved_by=by))
    return out


def approve(db, ids, by):
    return decide(db, ids, by, True)


def reject(db, ids, by):
    return decide(db, ids, by, False)


def _device_versions(s):
    vs = [d.get("blacklist_version") or 0 for d in clearing._devices(s)]
    return max(vs) if vs else 0


def publish(db, content_key=None):
    """Publish approved cards not yet in a version: the next version as a full list (the
    previous full list plus the new keys) and as a delta against the previous version.
    -> {"version", "added", "full_keys", "kinds"} or None when nothing is waiting."""
    s = clearing.ensure_schema(db)
    todo = [p for p in proposals(db, "approved") if p["version"] is None]
    if not todo:
        return None
    prev = latest(db, KIND_FULL)
    base = max(prev[0] if prev else 0, _device_versions(s),
               (latest(db, KIND_DELTA) or (0,))[0])
    version = base + 1
    old = set(list_keys(prev[1])) if prev else set()
    add = sorted({card_key(p["card"]) for p in todo} - old)
    keys = sorted(old | set(add))
    full = sign_content(wire_host.K_BLACKLIST_FULL, version,
                        blacklist_host.make_body(blacklist_host.KIND_FULL, keys), content_key)
    delta = sign_content(wire_host.K_BLACKLIST_DELTA, version,
                         blacklist_host.make_body(blacklist_host.KIND_DELTA,
                                                  [(blacklist_host.OP_ADD, k) for k in add],
                                                  base=base), content_key)
    with s.transaction():
        _publish(s, KIND_FULL, version, full)
        _publish(s, KIND_DELTA, version, delta)
        s.executemany("UPDATE blacklist_proposals SET version = ? WHERE id = ?",
                      [(version, p["id"]) for p in todo])
    return {"version": version, "base": base, "added": len(add), "full_keys": len(keys),
            "cards": [p["card"] for p in todo], "kinds": [KIND_FULL, KIND_DELTA],
            "published": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def content_for(db, device_version):
    """(wire kind, name, blob) a station pushes to a device holding blacklist device_version:
    the delta when it is based on exactly that version, else the full list; None when the
    device is current."""
    full = latest(db, KIND_FULL)
    if full is None or full[0] <= device_version:
        return None
    delta = latest(db, KIND_DELTA)
    if delta is not None and delta[0] == full[0] and device_version > 0:
        body = auth_host.unwrap_content(delta[1])[2]
        if struct.unpack_from(">I", body, 0)[0] == device_version:
            return wire_host.K_BLACKLIST_DELTA, KIND_DELTA, delta[1]
    return wire_host.K_BLACKLIST_FULL, KIND_FULL, full[1]
