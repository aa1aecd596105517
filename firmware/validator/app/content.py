# validator.app.content: where pushed content lands (blacklist, fare table, configuration).
# SPDX-License-Identifier: MIT
#
# sync.target.LogTarget checks every container's back-office MAC; these adapters move a
# verified container into its store and map the store's refusal onto a sync wire code.
# Boot path / sync path only -- never the tap path.
import json

from validator.rules import table
from validator.storage import blacklist as bl
from validator.sync import auth, wire
from validator.sync.target import LogTarget

P_KEYS = "sync.keys"  # auth.make_keys blob (device id, Kd, Kc)
P_FARES = "fares"  # the active fare-table container, re-verified at boot
P_CONFIG = "config"  # device configuration container (JSON body), re-verified at boot

_BL_CODES = ((bl.OK, wire.OK), (bl.REJ_VERIFY, wire.E_CONTENT), (bl.REJ_FORMAT, wire.E_CONTENT),
             (bl.REJ_VERSION, wire.E_VERSION), (bl.REJ_BASE, wire.E_VERSION),
             (bl.REJ_FULL, wire.E_STORAGE))


def bl_code(r):
    for a, b in _BL_CODES:
        if a == r:
            return b
    return wire.E_STORAGE


class BlacklistSink:
    """Streaming handler: a pushed blacklist goes straight into the shadow bank in flash;
    the bank switch (Blacklist.end -> commit) happens only for a verified container."""

    def __init__(self, blacklist):
        self.bl = blacklist

    def begin(self, kind, total):
        # the MAC is checked incrementally by LogTarget (auth.ContentVerifier)
        return bl_code(self.bl.begin_stream(total, verified=True))

    def write(self, off, data):
        self.bl.write(data)
        return wire.OK

    def commit(self, version):
        return bl_code(self.bl.end())

    def abort(self):
        self.bl.abort()


class Target(LogTarget):
    """LogTarget that also owns the fare tables and the device configuration."""

    def __init__(self, log, device_id, fw_version, kc, clock, blacklist, params, tables,
                 on_config=None, faults=None):
        sink = BlacklistSink(blacklist)
        LogTarget.__init__(
            self, log, device_id, fw_version, kc, clock,
            {wire.K_BLACKLIST_FULL: sink, wire.K_BLACKLIST_DELTA: sink,
             wire.K_FARES: self._unused, wire.K_CONFIG: self._unused},
            versions=[blacklist.version, fares_version(tables), 0, 0], faults=faults)
        self.params = params
        self.tables = tables
        self.on_config = on_config
        self.kc = kc

    def _unused(self, kind, version, body):
        return wire.E_KIND

    def apply(self, kind, blob):
        if kind == wire.K_FARES:
            r = self.tables.offer(blob, self._verify, self.clock.now())
            if r < 0:
                return (wire.E_VERSION if r == table.T_OLD_VERSION else wire.E_CONTENT), 0
            self.params.put(P_FARES, blob)
            v = fares_version(self.tables)
            self.versions[1] = v
            return wire.OK, v
        if kind == wire.K_CONFIG:
            if not self._verify(blob):
                return wire.E_CONTENT, 0
            try:
                cfg = parse_config(blob)
            except ValueError:
                return wire.E_CONTENT, 0
            self.params.put(P_CONFIG, blob)
            if self.on_config is not None:
                self.on_config(cfg)
            return wire.OK, 0
        return LogTarget.apply(self, kind, blob)

    def _verify(self, blob):
        return auth.verify_content(self.kc, blob)


def fares_version(tables):
    t = tables.pending if tables.pending is not None else tables.active
    return t.version if t is not None else 0


def parse_config(blob):
    """The JSON body of a verified config container (PROTOCOL.md §5 layout)."""
    body = memoryview(blob)[auth.CONTENT_HDR: len(blob) - auth.DIGEST]
    cfg = json.loads(bytes(body))
    if not isinstance(cfg, dict):
        raise ValueError("config")
    return cfg
