# validator.rules.fares_host: host-side names of validator.rules.fares's private constants.
# SPDX-License-Identifier: MIT
#
# Host tools and tests only; the firmware never imports this module.

# Public names of validator.rules.fares's private consts (const() names beginning with _ take no
# heap on the device); host callers import them from here (fares itself carries no host-only
# code). Checked equal by tests/host/test_heap_budget.py.
K_NONE = 0  # refused
K_FLAT = 1
K_TRANSFER = 2
K_BOARD = 3  # section line: entry recorded, 0 charged now
K_SECTION = 4  # section line: alighting, matrix fare
K_CAPPED = 5
K_NO_ENTRY = 7  # exit tap with no matching boarding: the line's max fare
K_FREE = 6  # card-type policy: free ride

# Decision.kind -> name, for logs, the depot and tests (a tuple of strings would cost heap and
# qstrs on the device, so only host callers have it).
KIND_NAMES = ("none", "flat", "transfer", "board", "section", "capped", "free", "no_entry")
