# validator.util.errors_text: names of the reason codes, for host tools and tests only.
# SPDX-License-Identifier: MIT
#
# The firmware never imports this module: a module-level tuple of strings costs heap (one
# str object each) and qstrs when the firmware runs from ROMFS. errors.reason_name()
# imports it lazily for host callers. Keep in R_* order (validator.errors).

NAMES = (
    "ok",
    "no_card",
    "multiple_cards",
    "blacklisted",
    "expired",
    "not_yet_valid",
    "app_blocked",
    "not_interconnect",
    "issuer_not_accepted",
    "insufficient_balance",
    "already_paid",
    "tap_again",
    "recovered",
    "card_error",
    "unsupported_card",
    "sam_fault",
    "storage_full",
    "comm_error",
    "fault",
    "no_tariff",
    "card_type_refused",
)



def reason_name(code):
    if 0 <= code < len(NAMES):
        return NAMES[code]
    return "reason_%d" % code
