# validator.app.content: where pushed content lands (blacklist, fare table, configuration).
# SPDX-License-Identifier: MIT
#
# sync.target.LogTarget checks every container's back-office MAC; these adapters move a
# verified container into its store and map the store's refusal onto a sync wire code.
# Boot path / sync path only -- never the tap path.
import json

from micropython import const

from validator.rules import table
from validator.storage import blacklist as bl
from validator.sync import auth
from validator.sync.target import LogTarget

# Private copies of validator.sync.wire's codes and kinds (PROTOCOL.md §4.3, §4.4; checked
# equal by tests/host/test_sync_consts.py): a const is inlined, an imported name costs heap.
_OK = const(0)
_E_CONTENT = const(6)
_E_VERSION = const(7)
_E_STORAGE = const(8)
_E_KIND = const(10)
_K_BLACKLIST_FULL = const(1)
_K_BLACKLIST_DELTA = const(2)
_K_FARES = const(3)
_K_CONFIG = const(5)
# and of validator.sync.auth's container layout (PROTOCOL.md §5): header, body, 32-byte tag
_CONTENT_HDR = const(14)
_DIGEST = const(32)

P_KEYS = "sync.keys"  # auth.make_keys blob (device id, Kd, Kc)
P_FARES = "fares"  # the active fare-table container, re-verified at boot
P_CONFIG = "config"  # device configuration container (JSON body), re-verified at boot


def _bl_code(r):
    """A storage.blacklist result -> the sync wire code the depot sees (PROTOCOL.md §4.4)."""
    if r == bl.OK:
        return _OK
    if r == bl.REJ_VERIFY or r == bl.REJ_FORMAT:
        return _E_CONTENT
    if r == bl.REJ_VERSION or r == bl.REJ_BASE:
        return _E_VERSION
    return _E_STORAGE  # REJ_FULL, or anything new


def _fares_version(tables):
    t = tables.pending if tables.pending is not None else tables.active
    return t.version if t is not None else 0


class Target(LogTarget):
    """LogTarget that also owns the fare tables and the device configuration.

    It is its own streaming blacklist handler (begin/write/commit/abort, sync/README.md): a
    pushed blacklist goes straight into the shadow bank in flash, and the bank switch
    (Blacklist.end, in commit) happens only for a container LogTarget has verified
    incrementally (auth.ContentVerifier). Fare tables and configuration are buffered and
    land in apply(); their handler entries only mark the kinds as accepted."""

    def __init__(self, log, device_id, fw_version, kc, clock, blacklist, params, tables,
                 on_config=None, faults=None):
        LogTarget.__init__(
            self, log, device_id, fw_version, kc, clock,
            {_K_BLACKLIST_FULL: self, _K_BLACKLIST_DELTA: self, _K_FARES: True,
             _K_CONFIG: True},
            versions=[blacklist.version, _fares_version(tables), 0, 0], faults=faults)
        self.bl = blacklist
        self.params = params
        self.tables = tables
        self.on_config = on_config

    # -- streaming blacklist handler ---------------------------------------------------
    def begin(self, kind, total):
        # the MAC is checked incrementally by LogTarget (auth.ContentVerifier)
        return _bl_code(self.bl.begin_stream(total, verified=True))

    def write(self, off, data):
        self.bl.write(data)
        return _OK

    def commit(self, version):
        return _bl_code(self.bl.end())

    def abort(self):
        self.bl.abort()

    # -- buffered kinds -------------------------------------------------------------
    def apply(self, kind, blob):
        if kind == _K_FARES:
            r = self.tables.offer(blob, self._verify, self.clock.now())
            if r < 0:
                return (_E_VERSION if r == table.T_OLD_VERSION else _E_CONTENT), 0
            self.params.put(P_FARES, blob)
            v = _fares_version(self.tables)
            self.versions[1] = v
            return _OK, v
        if kind == _K_CONFIG:
            if not self._verify(blob):
                return _E_CONTENT, 0
            try:
                cfg = parse_config(blob)
            except ValueError:
                return _E_CONTENT, 0
            self.params.put(P_CONFIG, blob)
            if self.on_config is not None:
                self.on_config(cfg)
            return _OK, 0
        return _E_KIND, 0

    def _verify(self, blob):
        return auth.verify_content(self._kc, blob)


def parse_config(blob):
    """The JSON body of a verified config container (PROTOCOL.md §5 layout)."""
    body = memoryview(blob)[_CONTENT_HDR: len(blob) - _DIGEST]
    cfg = json.loads(bytes(body))
    if not isinstance(cfg, dict):
        raise ValueError("config")
    return cfg
