# depot.anomalies: the reason codes clearing flags, and the detectors (pure functions).
# SPDX-License-Identifier: MIT
#
# REASONS is the one table of clearing reason codes (CLEARING.md "Reason codes" is this
# table). They are depot-side strings, never bytes on a card, a device or the wire, so they
# live here rather than in the format registry (firmware/formats/ holds byte-level codes).
# The detectors take decoded records ("recs": record_host.decode() dicts plus the depot keys
# _dev, _seq, _t (device seconds), _in_day) and yield Anomaly tuples; clearing.py stores them.
import collections
import itertools

# code -> (kind, proposes a blacklist entry by default, meaning)
REASONS = {
    "TAC_MISMATCH": ("tac", True, "the TAC differs from the one the card's issuer computes"),
    "TAC_NO_KEY": ("tac", False, "the key service has no key for the record's family, "
                   "algorithm or key version: not verified, not cleared"),
    "TAC_NO_FAMILY": ("tac", False, "PSAM slot names no key family: not verified"),
    "TAC_BAD_INPUT": ("tac", False, "the record's TAC inputs are malformed: not verified"),
    "MAC2_BAD": ("mac2", False, "the validator's PSAM refused the card's MAC2 (the TAC "
                 "decides the money; the card or PSAM is suspect)"),
    "MAC2_UNVERIFIED": ("mac2", False, "MAC2 not checked: the PSAM had lost the purchase "
                        "session (recovered tear, PSAM fault)"),
    "ATC_GAP": ("atc", False, "offline ATC skipped values: purchases the depot has not seen "
                "(another operator, lost records)"),
    "ATC_REPEAT": ("atc", True, "two debits with the same offline ATC: a cloned or replayed "
                   "card"),
    "ATC_REGRESSION": ("atc", True, "the offline ATC went backwards: a cloned or restored "
                       "card"),
    "BAL_LOST": ("balance", True, "balance_before below the previous balance_after with "
                 "consecutive ATC: value left the card without a purchase"),
    "BAL_GAINED": ("balance", False, "balance_before above the previous balance_after with "
                   "consecutive ATC: a load (loads move the online ATC, not the offline one) "
                   "the depot has no record of; the load system's file closes it"),
    "TWO_VEHICLES": ("two_vehicles", True, "the same card on two vehicles closer in time "
                     "than a passenger can change"),
    "CLOCK_AHEAD": ("clock", False, "record time later than the depot's time of receipt: "
                    "the device clock runs ahead"),
    "CLOCK_DRIFT": ("clock", False, "device clock differs from the depot's at sync"),
    "CLOCK_BACK": ("clock", False, "record times go backwards along the device's sequence "
                   "numbers: the clock was set back"),
    "SEQ_GAP": ("seq_gap", False, "sequence numbers missing in a device's records (records "
                "lost before sync)"),
    "CORRUPT_CRC": ("corrupt", False, "stored record fails its CRC: not cleared, kept with "
                    "device and seq"),
    "CORRUPT_FORMAT": ("corrupt", False, "stored record has the wrong size, commit word or "
                       "version: not cleared"),
    "NOT_SYNCED": ("not_synced", False, "device not synced for longer than the limit"),
}
KINDS = tuple(sorted({k for k, _, _ in REASONS.values()}))
PROPOSE_DEFAULT = tuple(sorted(c for c, (_, p, _) in REASONS.items() if p))

# thresholds ([INF] operator choices, one constant each; CLEARING.md)
TWO_VEHICLES_S = 60  # two different validators within this many seconds
CLOCK_TOLERANCE_S = 300  # record time after receipt / device vs depot clock
NOT_SYNCED_DAYS = 2
ATC_MOD = 0x10000  # the offline ATC is 2 bytes and wraps

Anomaly = collections.namedtuple("Anomaly", "reason device_id card detail records")


def kind_of(reason):
    return REASONS[reason][0]


def key_of(a):
    """The dedupe key: one anomaly per reason and record set (re-clearing a day adds none)."""
    if a.records:
        ks = ",".join("%d:%d" % r for r in sorted(a.records))
    else:
        ks = "%s:%s" % (a.device_id, a.detail)
    return "%s|%s" % (a.reason, ks)


def _k(r):
    return (r["_dev"], r["_seq"])


def record_flags(rec):
    """MAC2 flags of one record (the engine's TXFLAGS bits, decoded by record_host)."""
    out = []
    if rec.get("mac2_bad"):
        out.append(Anomaly("MAC2_BAD", rec["_dev"], rec["card_serial"],
                           "PSAM refused MAC2; TAC %s" % rec.get("tac", "?"), [_k(rec)]))
    if rec.get("mac2_unverified"):
        out.append(Anomaly("MAC2_UNVERIFIED", rec["_dev"], rec["card_serial"],
                           "MAC2 not checked (%s)" % rec["status"], [_k(rec)]))
    return out


def card_chain(timeline):
    """ATC and balance continuity of one card. timeline: its debits (normal, recovered and
    gray records proved debited), sorted by time then ATC. Pairs with no in-day record are
    context only (flagged by the day that holds them)."""
    out = []
    for p, n in itertools.pairwise(timeline):
        if not (p["_in_day"] or n["_in_day"]):
            continue
        d = (n["atc"] - p["atc"]) % ATC_MOD
        ks = [_k(p), _k(n)]
        card = n["card_serial"]
        if d == 1:
            if n["balance_before"] != p["balance_after"]:
                r = "BAL_LOST" if n["balance_before"] < p["balance_after"] else "BAL_GAINED"
                out.append(Anomaly(r, n["_dev"], card, "ATC %d->%d balance_after %d then "
                                   "balance_before %d" % (p["atc"], n["atc"], p["balance_after"],
                                                          n["balance_before"]), ks))
        elif d == 0:
            out.append(Anomaly("ATC_REPEAT", n["_dev"], card, "ATC %d twice (balance %d->%d "
                               "and %d->%d)" % (n["atc"], p["balance_before"], p["balance_after"],
                                                n["balance_before"], n["balance_after"]), ks))
        elif d > ATC_MOD // 2:
            out.append(Anomaly("ATC_REGRESSION", n["_dev"], card, "ATC %d after %d"
                               % (n["atc"], p["atc"]), ks))
        else:
            out.append(Anomaly("ATC_GAP", n["_dev"], card, "ATC %d after %d: %d unseen"
                               % (n["atc"], p["atc"], d - 1), ks))
    return out


def two_vehicles(taps, window_s=TWO_VEHICLES_S):
    """taps: one card's records that read the card (any status but gray), time order."""
    out = []
    for p, n in itertools.pairwise(taps):
        if not (p["_in_day"] or n["_in_day"]) or p["_dev"] == n["_dev"]:
            continue
        dt = n["_t"] - p["_t"]
        if 0 <= dt < window_s:
            out.append(Anomaly("TWO_VEHICLES", n["_dev"], n["card_serial"],
                               "devices %08X and %08X %d s apart" % (p["_dev"], n["_dev"], dt),
                               [_k(p), _k(n)]))
    return out


def seq_gaps(dev, seqs):
    """Missing sequence numbers between stored records of one device (sorted seqs)."""
    out = []
    for a, b in itertools.pairwise(seqs):
        if b > a + 1:
            out.append(Anomaly("SEQ_GAP", dev, "", "seq %d..%d missing (%d records)"
                               % (a + 1, b - 1, b - a - 1), [(dev, a), (dev, b)]))
    return out


def clock_back(dev, recs, tolerance_s=CLOCK_TOLERANCE_S):
    """recs: one device's decoded in-window records in seq order."""
    out = []
    for p, n in itertools.pairwise(recs):
        if (p["_in_day"] or n["_in_day"]) and n["_t"] < p["_t"] - tolerance_s:
            out.append(Anomaly("CLOCK_BACK", dev, n["card_serial"], "seq %d at %s after seq "
                               "%d at %s" % (n["_seq"], n["datetime"], p["_seq"], p["datetime"]),
                               [_k(p), _k(n)]))
    return out


def reasons_table():
    """The markdown table CLEARING.md carries between its `reasons` markers (a test holds
    the two equal; regenerate with `python -c 'from depot import anomalies as A;
    print(A.reasons_table())'`)."""
    rows = ["| code | kind | proposes | meaning |", "|---|---|---|---|"]
    for c, (k, p, m) in REASONS.items():
        rows.append("| `%s` | %s | %s | %s |" % (c, k, "yes" if p else "", m))
    return "\n".join(rows)
