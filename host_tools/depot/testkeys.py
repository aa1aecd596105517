# depot.testkeys: THE test key set (issue 19) -- one per purpose, shared by every command.
# SPDX-License-Identifier: MIT
#
# Every `--test-keys` option, `ykt fares compile --test-keys`, `ykt depot ... --test-keys`,
# `ykt sim`, the benches and the tests use these and no others. They are published in this
# file, so they protect nothing: never provision a validator in service with them
# (docs/SECURITY.md "Test keys"). A tiny module of its own: tier-1 tests import it on
# MicroPython at 128 KiB. depot.devsim re-exports the names.
TEST_MASTER = b"yikatong-test-depot-master-key!!"  # TEST depot master (device keys Kd)
TEST_CONTENT_KEY = b"yikatong-test-backoffice-c-key!!"  # TEST back-office Ed25519 private key
# its public key, what a test validator holds (auth_host.content_public(TEST_CONTENT_KEY);
# tests/host/test_security_keys.py holds them equal)
TEST_CONTENT_PUB = bytes.fromhex(
    "570fa8e1387588b0354699d23f4b38c9775bf1c84ed605e1b6da16be8e5b2cdb")
