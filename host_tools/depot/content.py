# depot.content: the back office's content signer -- key files and signed containers.
# SPDX-License-Identifier: MIT
#
# Content (blacklist full/delta, fare table, whitelist, configuration, clock correction,
# key rotation) is signed with an Ed25519 private key held by the back office
# (PROTOCOL.md §5; docs/SECURITY.md). A validator holds only public keys, so a key
# extracted from one validator signs nothing for another.
#
# Key files (`ykt depot keygen`):
#   NAME.key  "YKT-ED25519-PRIVATE-1\n" + 64 hex digits + "\n", mode 0600, created with
#             O_EXCL (never overwritten); load_private() refuses a file that group or
#             others can read, like ssh does. The key is never printed or logged.
#   NAME.pub  "YKT-ED25519-PUBLIC-1\n" + 64 hex digits + "\n": what `ykt flash provision`
#             / `ykt sync-keys --content-key` put into a validator.
# Library: sign_content(kind, version, body, key) is the one signer depot.risk and the
# `ykt depot ... sign` commands call; key=None signs with THE test key (depot.testkeys).
import os
import stat

from validator.sync import auth_host, wire_host

PRIVATE_MAGIC = "YKT-ED25519-PRIVATE-1"
PUBLIC_MAGIC = "YKT-ED25519-PUBLIC-1"

KINDS = {  # content names the station and the CLI use -> wire kind
    "blacklist": wire_host.K_BLACKLIST_FULL,
    "blacklist-delta": wire_host.K_BLACKLIST_DELTA,
    "fares": wire_host.K_FARES,
    "whitelist": wire_host.K_WHITELIST,
    "config": wire_host.K_CONFIG,
    "key": wire_host.K_KEY,
    "clock": wire_host.K_CLOCK,
}


class KeyFileError(ValueError):
    """A key file that cannot be used (the message names the file, never the key)."""


def keygen(path, seed=None):
    """Write a new private key to path (0600, never overwriting) and its public key to
    path's stem + ".pub". -> the public key (32 bytes)."""
    seed = os.urandom(32) if seed is None else bytes(seed)
    if len(seed) != 32:
        raise KeyFileError("an Ed25519 private key is 32 bytes")
    pub = auth_host.content_public(seed)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("%s\n%s\n" % (PRIVATE_MAGIC, seed.hex()))
    with open(public_path(path), "w") as f:
        f.write("%s\n%s\n" % (PUBLIC_MAGIC, pub.hex()))
    return pub


def public_path(private_path):
    stem = private_path[:-4] if private_path.endswith(".key") else private_path
    return stem + ".pub"


def _read(path, magic, what):
    try:
        with open(path) as f:
            lines = f.read().split()
    except OSError as e:
        raise KeyFileError("%s: cannot read the %s: %s" % (path, what, e.strerror or e))
    except UnicodeDecodeError:
        lines = []
    if len(lines) != 2 or lines[0] != magic or len(lines[1]) != 64:
        raise KeyFileError("%s: not a %s file (%s)" % (path, what, magic))
    try:
        return bytes.fromhex(lines[1])
    except ValueError:
        raise KeyFileError("%s: not a %s file (%s)" % (path, what, magic))


def load_private(path):
    """The 32-byte private key in path; KeyFileError when group/others may read it or it is
    not a private key file."""
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise KeyFileError("%s: cannot read the private key: %s" % (path, e.strerror or e))
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError("%s: the private key is readable by others (mode %03o): chmod 600 it"
                        % (path, mode & 0o777))
    return _read(path, PRIVATE_MAGIC, "private key")


def load_public(path):
    """The 32-byte public key in a .pub file (or derived from a private key file)."""
    try:
        return _read(path, PUBLIC_MAGIC, "public key")
    except KeyFileError:
        try:
            return auth_host.content_public(load_private(path))
        except KeyFileError:
            pass
        raise


def test_key():
    from depot.testkeys import TEST_CONTENT_KEY

    return TEST_CONTENT_KEY


def sign_content(wire_kind, version, body, key=None):
    """The signed container (PROTOCOL.md §5) of body; key None: THE test key."""
    if not 0 <= version <= 0xFFFFFFFF:
        raise ValueError("content version must be 0..4294967295")
    return auth_host.make_content(key if key is not None else test_key(), wire_kind, version,
                                  body)


def verify(pub, blob):
    """(kind, version, body bytes) when blob verifies under pub, else None -- the
    validator's own check (validator.sync.auth.verify_content)."""
    from validator.sync import auth

    c = auth.verify_content(pub, blob)
    return None if c is None else (c[0], c[1], bytes(c[2]))


# -- bodies of the small kinds ---------------------------------------------------------------


def key_body(new_pub):
    """K_KEY body: the next content public key (32 bytes), signed by the current key."""
    if len(new_pub) != 32:
        raise ValueError("a content public key is 32 bytes")
    return bytes(new_pub)


def clock_body(secs):
    """K_CLOCK body: device seconds since 2000-01-01 (u32)."""
    return int(secs).to_bytes(4, "big")
