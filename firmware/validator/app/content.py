# validator.app.content: where pushed content lands (blacklist, fare table, configuration).
# SPDX-License-Identifier: MIT
#
# sync.target.LogTarget unwraps and verifies every container (sync.auth) and refuses a
# rollback; these adapters hand the verified body to its store and map the store's
# refusal onto a sync wire code. Stored containers (fare table, configuration) go through
# the same sync.auth check at boot (stored()). Boot path / sync path only -- never the
# tap path.
import json

from micropython import const

from validator.storage import blacklist as bl
from validator.sync import auth
from validator.sync.target import LogTarget

# Private copies of validator.sync.wire's codes and kinds (PROTOCOL.md §4.3, §4.4; checked
# equal by tests/host/test_sync_consts.py): a const is inlined, an imported name costs heap.
_OK = const(0)
_E_CONTENT = const(6)
_E_VERSION = const(7)
_E_STORAGE = const(8)
_K_BLACKLIST_FULL = const(1)
_K_BLACKLIST_DELTA = const(2)
_K_FARES = const(3)
_K_CONFIG = const(5)

P_KEYS = "sync.keys"  # auth.make_keys blob (device id, Kd, Kc)
P_FARES = "fares"  # the active fare-table container, re-verified at boot
P_CONFIG = "config"  # device configuration container (JSON body), re-verified at boot


def _bl_code(r):
    """A storage.blacklist result -> the sync wire code the depot sees (PROTOCOL.md §4.4)."""
    if r == bl.OK:
        return _OK
    if r == bl.REJ_FORMAT:
        return _E_CONTENT
    if r == bl.REJ_BASE:
        return _E_VERSION
    return _E_STORAGE  # REJ_FULL, or anything new


def _fares_version(tables):
    t = tables.pending if tables.pending is not None else tables.active
    return t.version if t is not None else 0


def stored(params, kc, name, kind):
    """-> (version, body) of the container stored under name if it is genuine and of that
    kind (re-verified at boot: flash is not trusted more than the line), else None."""
    blob = params.get(name)
    c = auth.verify_content(kc, blob) if blob is not None and kc is not None else None
    if c is None or c[0] != kind:
        return None
    return c[1], c[2]


class Target(LogTarget):
    """LogTarget that also owns the fare tables and the device configuration.

    It is its own streaming blacklist handler (begin/write/commit/abort, sync/README.md):
    a pushed blacklist body goes straight into the shadow bank in flash, and the bank
    switch (Blacklist.end, in commit) happens only once LogTarget has verified the whole
    container (auth.ContentVerifier). Fare tables and configuration are buffered; their
    handlers get the verified body and keep the container in the parameter store."""

    def __init__(self, log, device_id, fw_version, kc, clock, blacklist, params, tables,
                 on_config=None, faults=None, config_version=0):
        LogTarget.__init__(
            self, log, device_id, fw_version, kc, clock,
            {_K_BLACKLIST_FULL: self, _K_BLACKLIST_DELTA: self, _K_FARES: self._fares,
             _K_CONFIG: self._config},
            versions=[blacklist.version, _fares_version(tables), 0, config_version],
            faults=faults)
        self.bl = blacklist
        self.params = params
        self.tables = tables
        self.on_config = on_config
        self._blob = None  # the container being applied (kept in flash by the handler)

    # -- streaming blacklist handler ---------------------------------------------------
    def begin(self, kind, version, body_len):
        return _bl_code(self.bl.begin_stream(kind, version, body_len))

    def write(self, off, data):
        self.bl.write(data)
        return _OK

    def commit(self, version):
        return _bl_code(self.bl.end())

    def abort(self):
        self.bl.abort()

    # -- buffered kinds: verified body in, container kept for the next boot -------------
    def apply(self, kind, blob):
        self._blob = blob
        try:
            return LogTarget.apply(self, kind, blob)
        finally:
            self._blob = None

    def _fares(self, kind, version, body):
        if self.tables.offer(body, self.clock.now(), version) < 0:
            return _E_CONTENT
        self.params.put(P_FARES, self._blob)
        return _OK

    def _config(self, kind, version, body):
        try:
            cfg = parse_config(body)
        except ValueError:
            return _E_CONTENT
        self.params.put(P_CONFIG, self._blob)
        if self.on_config is not None:
            self.on_config(cfg)
        return _OK


def parse_config(body):
    """The device configuration: the JSON object in a verified config container's body."""
    cfg = json.loads(bytes(body))
    if not isinstance(cfg, dict):
        raise ValueError("config")
    return cfg
