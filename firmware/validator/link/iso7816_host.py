# validator.link.iso7816_host: host-side names of validator.link.iso7816's private constants.
# SPDX-License-Identifier: MIT
#
# Host tools and tests only; the firmware never imports this module.

# Public names of validator.link.iso7816's private consts (const() names beginning with _ take no
# heap on the device); iso7816.__getattr__ serves them to host callers. Checked equal by
# tests/host/test_heap_budget.py.
SAM_NO_ATR = 1
SAM_BAD_ATR = 2
SAM_TIMEOUT = 3
SAM_ECHO = 5
