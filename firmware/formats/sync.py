"""The sync wire (sync/PROTOCOL.md): frame, message types, result codes, content kinds,
payload layouts; the signed content container and the provisioning key file."""

from formats.model import Codes, Hex, Layout
from formats.model import Field as F

SESSION = ("sync/session.py", "sync/xfer.py", "sync/target.py", "app/content.py")

FRAME = Layout(
    "sync-frame", "sync frame header", owner="sync/wire.py", prefix="FH_", users=SESSION,
    hosts=("sync/wire_host.py",), doc="sync/PROTOCOL.md", size=11,
    fields=(
        F("SOF", 0, 2, "ascii", '"YK"'),
        F("TYPE", 2, 1, "x8", "message type (T_*)"),
        F("FLAGS", 3, 1, "flags8", "F_MAC, F_DEFLATE, F_ENC"),
        F("SEQ", 4, 4, "u32", "frame sequence, strictly increasing per direction"),
        F("LEN", 8, 2, "u16", "payload bytes (<= MAX_PAYLOAD)"),
        F("HCHK", 10, 1, "x8", "low byte of CRC-32 over bytes 2..9 (type .. len)"),
    ),
    consts=(
        ("SOF0", Hex(0x59), '"Y"'),
        ("SOF1", Hex(0x4B), '"K"'),
        ("HDR", 11, "header bytes; the payload follows"),
        ("MAC_LEN", 16, "truncated HMAC-SHA256 after the payload when F_MAC"),
        ("CRC_LEN", 4, "CRC-32 over bytes 2 .. end of MAC, last"),
        ("MAX_PAYLOAD", 2048, "largest payload"),
        ("MAX_FRAME", 2079, "HDR + MAX_PAYLOAD + MAC_LEN + CRC_LEN"),
        ("F_MAC", 1, "flags bit0: MAC present (every frame after AUTH)"),
        ("F_DEFLATE", 2, "flags bit1: payload is raw deflate (PUSH_DATA)"),
        ("F_ENC", 4, "flags bit2: payload AES-128-CTR encrypted (every frame after AUTH)"),
        ("F_KNOWN", 7, "all defined flag bits"),
        ("CTR_D2H", 1, "counter block byte 0 of device -> host frames (section 3.4)"),
        ("CTR_H2D", 2, "counter block byte 0 of host -> device frames"),
        ("SEQ_LAST", Hex(0xFFFFFFFF), "last frame seq: a sender there ends the session"),
        ("PROTO_VERSION", 2, "HELLO/CHALLENGE ver (2: frames after AUTH encrypted)"),
        ("PULL_Z", 1, "PULL flags bit0: the host accepts RECORDS_Z"),
    ),
)

TYPES = Codes(
    "sync-types", "sync message types", owner="sync/wire.py", users=SESSION,
    hosts=("sync/wire_host.py",), doc="sync/PROTOCOL.md", hexfmt=True,
    items=(
        ("T_HELLO", 0x01, "h->d: ver(1) Nh(16)"),
        ("T_CHALLENGE", 0x02, "d->h: ver(1) device_id(4) Nd(16) Pd(32)"),
        ("T_AUTH", 0x03, "h->d: Ph(32)"),
        ("T_INFO", 0x04, "d->h: see INFO"),
        ("T_INFO_REQ", 0x05, "h->d: (empty), ask for a fresh INFO"),
        ("T_PULL", 0x10, "h->d: from_seq(4) window(1) max_records(2) [flags(1): bit0 PULL_Z]"),
        ("T_RECORDS", 0x11, "d->h: first_seq(4) count(2) rec_size(2) records"),
        ("T_ACK", 0x12, "h->d: upto_seq(4): every record with seq <= upto_seq is stored"),
        ("T_PULL_END", 0x13, "d->h: next_seq(4): no record at or after next_seq yet"),
        ("T_RECORDS_Z", 0x14, "d->h: first_seq(4) count(2) rec_size(2) delta-coded records"),
        ("T_PUSH_BEGIN", 0x20, "h->d: kind(1) total_len(4)"),
        ("T_PUSH_DATA", 0x21, "h->d: offset(4) data (F_DEFLATE allowed)"),
        ("T_PUSH_END", 0x22, "h->d: (empty)"),
        ("T_PUSH_ACK", 0x23, "d->h: offset(4): bytes received so far"),
        ("T_SET_CLOCK", 0x30, "h->d: secs(4): local seconds since 2000-01-01"),
        ("T_GET_FAULTS", 0x31, "h->d: (empty)"),
        ("T_FAULTS", 0x32, "d->h: fault log bytes (target-defined, <= 2048)"),
        ("T_RESULT", 0x3F, "d->h: req_type(1) code(1) arg(4)"),
        ("T_BYE", 0x7E, "h->d: (empty)"),
        ("T_ERROR", 0x7F, "either: code(1)"),
    ),
)

RESULTS = Codes(
    "sync-results", "sync result codes (RESULT / ERROR code)", owner="sync/wire.py",
    users=SESSION, hosts=("sync/wire_host.py",), doc="sync/PROTOCOL.md",
    items=(
        ("OK", 0, "done"),
        ("E_AUTH", 1, "authentication failed or request before AUTH"),
        ("E_MAC", 2, "frame MAC wrong"),
        ("E_REPLAY", 3, "frame seq not increasing"),
        ("E_PROTO", 4, "unexpected message / bad payload"),
        ("E_RANGE", 5, "sequence or offset out of range"),
        ("E_CONTENT", 6, "content signature/format refused (forged or corrupt)"),
        ("E_VERSION", 7, "content version not newer / delta base mismatch"),
        ("E_STORAGE", 8, "storage fault while applying"),
        ("E_BUSY", 9, "another session is active"),
        ("E_KIND", 10, "unknown content kind"),
    ),
)

KINDS = Codes(
    "content-kinds", "content kinds (PUSH_BEGIN kind, container kind)", owner="sync/wire.py",
    users=SESSION + ("storage/blacklist.py", "rules/table.py", "sync/auth.py"),
    hosts=("sync/wire_host.py",), doc="sync/PROTOCOL.md",
    items=(
        ("K_BLACKLIST_FULL", 1, "a whole blacklist"),
        ("K_BLACKLIST_DELTA", 2, "blacklist changes against the active version"),
        ("K_FARES", 3, "a fare table (rules/FORMAT.md)"),
        ("K_WHITELIST", 4, "accepted issuers"),
        ("K_CONFIG", 5, "device configuration"),
        ("K_KEY", 6, "content key rotation: the next Ed25519 public key (32 bytes)"),
        ("K_CLOCK", 7, "signed clock correction (clock-body: device, secs) past the step bound"),
    ),
)

PAYLOADS = Codes(
    "sync-payloads", "payload struct formats (big-endian)", owner="sync/wire.py",
    users=SESSION, hosts=("sync/wire_host.py",), doc="sync/PROTOCOL.md",
    items=(
        ("P_RESULT", ">BBI", "RESULT: req_type code arg"),
        ("P_PULL", ">IBH", "PULL: from_seq window max_records (flags byte optional)"),
        ("P_PULL_FLAGS", ">IBHB", "PULL with its flags byte"),
        ("P_RECORDS", ">IHH", "RECORDS / RECORDS_Z head: first_seq count rec_size"),
        ("P_PUSH_BEGIN", ">BI", "PUSH_BEGIN: kind total_len"),
        ("P_U32", ">I", "ACK, PULL_END, PUSH_DATA offset, PUSH_ACK, SET_CLOCK"),
        ("RECORDS_OFF", 19, "first record byte of a RECORDS frame (HDR + 8)"),
    ),
)

INFO = Layout(
    "sync-info", "INFO payload", owner="sync/session.py", prefix="INFO_",
    hosts=("sync/wire_host.py",), doc="sync/PROTOCOL.md", size=44, listed=True,
    fields=(
        F("DEVICE_ID", 0, 4, "u32", "device id"),
        F("FIRMWARE", 4, 4, "u32", "firmware version (major<<16 | minor<<8 | patch)"),
        F("FIRST_SEQ", 8, 4, "u32", "oldest record still held"),
        F("ACKED_SEQ", 12, 4, "u32", "watermark: highest seq the depot confirmed "
          "(first_seq-1 when none)"),
        F("NEXT_SEQ", 16, 4, "u32", "seq the next record will get"),
        F("REC_SIZE", 20, 2, "u16", "bytes per record"),
        F("BLACKLIST_VERSION", 22, 4, "u32", "blacklist version"),
        F("FARES_VERSION", 26, 4, "u32", "fare table version"),
        F("WHITELIST_VERSION", 30, 4, "u32", "whitelist version"),
        F("CONFIG_VERSION", 34, 4, "u32", "config version"),
        F("CLOCK", 38, 4, "u32", "clock (device seconds since 2000-01-01)"),
        F("FAULTS", 42, 2, "u16", "fault count"),
    ),
    consts=(
        ("INFO_LEN", 44, "INFO payload bytes"),
        ("P_INFO", ">IIIIIHIIIIIH", "the same fields as one struct format"),
    ),
)

CONTENT = Layout(
    "content", "signed content container (YKC2)", owner="sync/auth.py", prefix="CH_",
    users=("sync/target.py", "app/content.py", "storage/blacklist.py", "rules/table.py"),
    hosts=("sync/auth_host.py",), doc="sync/PROTOCOL.md", size=14,
    fields=(
        F("MAGIC", 0, 4, "ascii", '"YKC2"'),
        F("KIND", 4, 1, "u8", "content kind (K_*)"),
        F("FLAGS", 5, 1, "u8", "0"),
        F("VERSION", 6, 4, "u32", "content version, monotonic per kind"),
        F("BODY_LEN", 10, 4, "u32", "body bytes; the body follows, then the signature"),
    ),
    consts=(
        ("CONTENT_MAGIC", b"YKC2", "container magic"),
        ("CONTENT_HDR", 14, "header bytes before the body"),
        ("P_CONTENT", ">BBII", "kind flags version body_len, after the magic"),
        ("SIG_LEN", 64, "Ed25519 signature of header || SHA-256(body), after the body"),
        ("BODY_HASH", 32, "SHA-256 of the body (the signed message's tail)"),
    ),
)

CLOCK_BODY = Layout(
    "clock-body", "signed clock correction (K_CLOCK body)", owner="app/content.py",
    prefix="CK_", hosts=("sync/auth_host.py",), doc="sync/PROTOCOL.md", size=8,
    fields=(
        F("DEVICE", 0, 4, "u32", "the device it is for (FFFFFFFF: any)"),
        F("SECS", 4, 4, "u32", "device seconds since 2000-01-01 to set"),
    ),
    consts=(
        ("CLOCK_BODY", 8, "K_CLOCK body bytes"),
        ("KEY_BODY", 32, "K_KEY body bytes: the next content public key"),
        ("ANY_DEVICE", Hex(0xFFFFFFFF), "CK_DEVICE of a correction for every device"),
    ),
)

KEYFILE = Layout(
    "keyfile", "provisioning key file (YKK2)", owner="sync/auth.py", prefix="KF_",
    hosts=("sync/auth_host.py",), doc="sync/PROTOCOL.md", size=76,
    fields=(
        F("MAGIC", 0, 4, "ascii", '"YKK2"'),
        F("DEVICE", 4, 4, "u32", "device id"),
        F("KD", 8, 32, "secret", "device key Kd (never printed)"),
        F("KP", 40, 32, "hex", "back-office content public key (Ed25519), first trusted"),
        F("CRC", 72, 4, "u32", "CRC-32 of bytes 0..71"),
    ),
    consts=(
        ("KEYS_LEN", 76, "key file bytes"),
        ("KEYS_MAGIC", b"YKK2", "key file magic"),
        ("NONCE_LEN", 16, "HELLO / CHALLENGE nonces"),
        ("TAG_LEN", 16, "frame MAC bytes (MAC_LEN)"),
        ("BLOCK", 64, "HMAC-SHA256 block size"),
    ),
)
