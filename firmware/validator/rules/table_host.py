# validator.rules.table_host: host-side names of validator.rules.table's private constants.
# SPDX-License-Identifier: MIT
#
# Host tools and tests only; the firmware never imports this module.

# Public names of validator.rules.table's private consts (const() names beginning with _ take no
# heap on the device); host callers import them from here (table itself carries no host-only
# code). Checked equal by tests/host/test_heap_budget.py.
T_ACTIVE = 0
T_PENDING = 1
T_BAD_AUTH = -1
T_BAD_FORMAT = -2
IND_RAIL = 1
IND_BUS = 2
LINE_LEN = 12
POLICY_LEN = 8
ACCEPT_LEN = 4
KIND_FARE_TABLE = 3
MAGIC = b"YKFT"
FLAG_XFER_SAME_LINE = 1
FLAG_XFER_OTHER_CITY = 2
FLAG_BOARD_NEEDS_MAX = 4
XFER_NONE = 0
XFER_AMOUNT_OFF = 1
XFER_PERCENT_OFF = 2
XFER_FREE = 3
TAPOFF_CHARGE_MAX = 0
PAY_PERCENT = 0
PAY_FIXED = 1
PAY_FREE = 2
PAY_REFUSE = 3
POL_TRANSFER = 1
POL_CAP = 2


def header_fields(t):
    """Small summary tuple for tools/logs (allocates; not for the tap path)."""
    return (t.version, t.activation, t.city, t.n_lines, t.n_pol, t.n_acc, t.cap)

