# validator.link.iso7816_host: host-side names of validator.link.iso7816's private constants.
# SPDX-License-Identifier: MIT
#
# Host tools and tests only; the firmware never imports this module.

# Public names of validator.link.iso7816's private consts (const() names beginning with _ take no
# heap on the device); host callers import them from here. Checked equal by
# tests/host/test_heap_budget.py.
SAM_NO_ATR = 1
SAM_BAD_ATR = 2
SAM_TIMEOUT = 3
SAM_ECHO = 5


def conv(x):
    """The inverse-convention byte map (ISO/IEC 7816-3 §8.1): bitreverse(~x); iso7816._INV
    is this table as a literal (checked by tests/fw/test_iso7816.py)."""
    v = 0
    for i in range(8):
        if x & (1 << i):
            v |= 0x80 >> i
    return v ^ 0xFF
