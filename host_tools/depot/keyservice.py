# depot.keyservice: the clearing centre's key service -- the only place that checks a TAC.
# SPDX-License-Identifier: MIT
#
# The depot never holds issuer keys. Clearing asks a KeyService "is this record's TAC the
# one the card's issuer would have computed?" and gets back (ok, reason): ok True (verified),
# False (wrong TAC) or None (cannot tell: no key for that family / algorithm / key version,
# or a record without TAC inputs). A production key service is the clearing centre's HSM
# behind a network call (one request per batch); `TestKeyService` is the stand-in for tests
# and the sim, built from the published TEST master keys (host_tools/emu/test_master_keys.json),
# both families -- MOT / T-Union (PSAM slot 0) and the local (MOHURD) issuer (slot 1) -- and
# both algorithms (3DES, SM4). See CLEARING.md "Key service".
#
# Constructions: card-protocol.md §5.1-§5.3 as implemented by emu.crypto (the reference):
#   DTK = DIV(DIV(MK_tac, factor2), serial8); TAC = MAC over amount4 type1 terminal6 ttsn4
#   datetime7 with the TAC key (3DES: DTK_L xor DTK_R, single-DES CBC MAC; SM4: SM4 CBC-MAC
#   under the DTK, [INF] choices in emu.crypto). The "fast" engine computes the same thing with
#   the `cryptography` package (OpenSSL: TripleDES, SM4) and caches each card's TAC cipher, so
#   a day's second tap of a card costs one 3-block MAC; the "reference" engine calls
#   emu.crypto (pure Python, ~1 ms a record). A self-test at construction proves the two agree
#   on every family/algorithm, so the fast engine can never drift from the reference.
import warnings

from emu import crypto, issuer

# record PSAM_SLOT -> key family (txn/README.md "Open / [INF]": slot 0 MOT, 1 local)
SLOT_FAMILY = {0: "mot", 1: "local"}
FAMILIES = ("mot", "local")
_CACHE_MAX = 1 << 18  # cached card TAC ciphers before the cache is dropped (bounded memory)


class KeyService:
    """Interface. verify_tac(rec) -> (ok, reason); rec is a record_host.decode() dict."""

    name = "abstract"

    def verify_tac(self, rec):
        raise NotImplementedError

    def verify_batch(self, recs):
        """-> [(ok, reason)] in order; a remote service overrides this with one request."""
        return [self.verify_tac(r) for r in recs]

    def verify_m1(self, rec):
        """An M1 purse record (CARD_KIND 1, no TAC): is M1_MAC the local PSAM's MAC over
        it (firmware/validator/m1/FORMAT.md §5)? rec needs "_raw" (the 128-byte image).
        (ok, reason) as verify_tac, the same reason codes."""
        return None, "TAC_NO_KEY"

    def describe(self):
        return {"name": self.name}


def tac_inputs(rec):
    """(family, alg, factor2_8, serial8, data22, tac4) of a decoded record, or a reason str."""
    try:
        fam = SLOT_FAMILY.get(int(rec["psam_slot"]))
        if fam is None:
            return "TAC_NO_FAMILY"
        alg = int(rec["alg_id"], 16)
        if alg not in (crypto.ALG_3DES, crypto.ALG_SM4):
            return "TAC_NO_KEY"
        factor2 = bytes.fromhex(rec["issuer_id"])
        if fam == "local":
            factor2 = issuer.local_factor2(factor2)
        serial8 = bytes.fromhex(rec["card_serial"])[2:10]
        data = (int(rec["amount"]).to_bytes(4, "big") + bytes((int(rec["txn_type"], 16),)) +
                bytes.fromhex(rec["terminal_no"]) + bytes.fromhex(rec["ttsn"]) +
                bytes.fromhex(rec["datetime"]))
        tac = bytes.fromhex(rec.get("tac", "ffffffff"))
    except (KeyError, ValueError, TypeError, OverflowError):
        return "TAC_BAD_INPUT"
    if len(data) != 22 or len(tac) != 4 or len(factor2) != 8 or len(serial8) != 8:
        return "TAC_BAD_INPUT"
    return fam, alg, factor2, serial8, data, tac


class TestKeyService(KeyService):
    """TEST KEYS ONLY. master_keys: the key file object (emu.issuer.load_master_keys());
    engine "fast" (OpenSSL via `cryptography`, cached per card) or "reference" (emu.crypto)."""

    name = "test-master-keys"

    def __init__(self, master_keys=None, engine="fast"):
        mk = master_keys or issuer.load_master_keys()
        self.keys = {"mot": mk, "local": issuer.local_master_keys(mk)}
        self.engine = engine
        self._issuer_keys = {}
        self._card = {}
        if engine == "fast":
            self._fast_setup()
            self._self_test()
        elif engine != "reference":
            raise ValueError("engine: fast or reference, not %r" % (engine,))

    def describe(self):
        return {"name": self.name, "engine": self.engine, "families": list(FAMILIES),
                "algorithms": ["3des", "sm4"], "test_keys": True}

    # -- reference ---------------------------------------------------------------------
    def _reference(self, fam, alg, factor2, serial8, data):
        mk = crypto.master_key(self.keys[fam], alg, "tac")
        dtk = crypto.card_key(mk, factor2, serial8, alg)
        return crypto.purchase_tac(alg, dtk, data[0:4], data[4], data[5:11], data[11:15],
                                   data[15:22])

    # -- fast (OpenSSL) ------------------------------------------------------------------
    def _fast_setup(self):
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
            except ImportError:  # cryptography < 43
                TripleDES = algorithms.TripleDES  # noqa: N806
        self._Cipher, self._modes = Cipher, modes
        self._TripleDES, self._SM4 = TripleDES, algorithms.SM4

    def _ecb(self, alg, key):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = self._SM4(key) if alg == crypto.ALG_SM4 else self._TripleDES(key)
            return self._Cipher(a, self._modes.ECB()).encryptor()

    def _div(self, alg, key16, f8, e=None):
        e = e or self._ecb(alg, key16)
        nf = bytes(x ^ 0xFF for x in f8)
        if alg == crypto.ALG_SM4:
            return e.update(f8 + (nf if crypto.SM4_DIV_INPUT_NOT else f8))
        return e.update(f8) + e.update(nf)

    def _card_cipher(self, fam, alg, factor2, serial8):
        ck = (fam, alg, factor2, serial8)
        c = self._card.get(ck)
        if c is None:
            ik = (fam, alg, factor2)
            ie = self._issuer_keys.get(ik)  # the issuer key's cipher, kept
            if ie is None:
                mk = crypto.master_key(self.keys[fam], alg, "tac")
                ie = self._issuer_keys[ik] = self._ecb(alg, self._div(alg, mk, factor2))
            dtk = self._div(alg, None, serial8, ie)
            if alg == crypto.ALG_SM4:
                k = dtk if not crypto.SM4_TAC_KEY_HALVES_XOR else crypto.tac_key(alg, dtk) * 2
            else:
                k = crypto.tac_key(alg, dtk)  # 8 bytes: TripleDES with K1=K2=K3 is DES
            if len(self._card) >= _CACHE_MAX:
                self._card.clear()
            c = self._card[ck] = self._ecb(alg, k)
        return c

    def _fast(self, fam, alg, factor2, serial8, data):
        e = self._card_cipher(fam, alg, factor2, serial8)
        if alg == crypto.ALG_SM4:  # m2 padding: 22 + 80 00.. -> 32 bytes, 2 blocks
            d = data + b"\x80" + bytes(9)
            v = e.update(d[0:16])
            v = e.update((int.from_bytes(v, "big") ^ int.from_bytes(d[16:32], "big"))
                         .to_bytes(16, "big"))
            return v[: crypto.SM4_MAC_TRUNC]
        d = data + b"\x80" + bytes(1)  # 24 bytes, 3 DES blocks, IV 0
        v = e.update(d[0:8])
        v = e.update((int.from_bytes(v, "big") ^ int.from_bytes(d[8:16], "big"))
                     .to_bytes(8, "big"))
        v = e.update((int.from_bytes(v, "big") ^ int.from_bytes(d[16:24], "big"))
                     .to_bytes(8, "big"))
        return v[:4]

    def _self_test(self):
        """The fast engine must equal emu.crypto for every family and algorithm."""
        data = bytes.fromhex("000000c8" "09" "000000120001" "00000001" "20260302060000")
        for fam in FAMILIES:
            for alg in (crypto.ALG_3DES, crypto.ALG_SM4):
                f2, s8 = bytes.fromhex("02002900ffffffff"), bytes.fromhex("7506608665876474")
                if self._fast(fam, alg, f2, s8, data) != self._reference(fam, alg, f2, s8,
                                                                          data):
                    raise RuntimeError("key service: fast %s/%s TAC differs from emu.crypto"
                                       % (fam, crypto.family_name(alg)))
        self._card.clear()

    # -- the interface -------------------------------------------------------------------
    def compute_tac(self, rec):
        """The TAC the issuer would compute for this record (bytes), or a reason str."""
        x = tac_inputs(rec)
        if isinstance(x, str):
            return x
        fam, alg, factor2, serial8, data, _ = x
        try:
            if self.engine == "fast":
                return self._fast(fam, alg, factor2, serial8, data)
            return self._reference(fam, alg, factor2, serial8, data)
        except (KeyError, ValueError):
            return "TAC_NO_KEY"

    def verify_tac(self, rec):
        x = tac_inputs(rec)
        if isinstance(x, str):
            return None, x
        fam, alg, factor2, serial8, data, tac = x
        try:
            if self.engine == "fast":
                want = self._fast(fam, alg, factor2, serial8, data)
            else:
                want = self._reference(fam, alg, factor2, serial8, data)
        except (KeyError, ValueError):
            return None, "TAC_NO_KEY"
        if want == tac:
            return True, None
        return False, "TAC_MISMATCH"

    def verify_m1(self, rec):
        from emu import mifare

        try:
            raw = bytes(rec["_raw"])
            mac = bytes.fromhex(rec["m1_mac"])
            want = mifare.record_mac(self.keys["local"], raw)
        except (KeyError, ValueError, TypeError, IndexError):
            return None, "TAC_BAD_INPUT"
        return (True, None) if want == mac else (False, "TAC_MISMATCH")


def open_keyservice(spec=None):
    """A key service from a CLI value: None/"test" -> TestKeyService(fast) on the test keys,
    "test-reference" -> the pure-Python reference engine, "test:PATH" -> test keys file."""
    if spec in (None, "", "test"):
        return TestKeyService()
    if spec == "test-reference":
        return TestKeyService(engine="reference")
    if spec.startswith("test:"):
        return TestKeyService(issuer.load_master_keys(spec[5:]))
    raise ValueError("key service: test, test-reference or test:KEYFILE, not %r" % (spec,))
