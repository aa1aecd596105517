# validator.app.feedback: what the passenger sees and hears for each reason code.
# SPDX-License-Identifier: MIT
#
# One table, indexed by validator.errors R_* codes, kept as bytes (flash when frozen).
# Boards turn (colour, beeps) into pins, PWM or display text; the unix board reports the
# reason itself to the simulator. Green + 1 beep = paid; red + 3 beeps = refused;
# amber + 2 beeps = "tap again" / recovered / already paid (driver's attention, no charge).
from micropython import const

from validator import errors as E

_OFF = const(0)
GREEN = const(1)
RED = const(2)
AMBER = const(3)

# colour and beep count per reason code, in R_* order (errors.NAMES)
_COLOUR = bytes((
    GREEN,  # ok
    _OFF,  # no_card
    RED,  # multiple_cards
    RED,  # blacklisted
    RED,  # expired
    RED,  # not_yet_valid
    RED,  # app_blocked
    RED,  # not_interconnect
    RED,  # issuer_not_accepted
    RED,  # insufficient_balance
    AMBER,  # already_paid
    AMBER,  # tap_again
    GREEN,  # recovered
    RED,  # card_error
    RED,  # unsupported_card
    RED,  # sam_fault
    RED,  # storage_full
    AMBER,  # comm_error
    RED,  # fault
    RED,  # no_tariff
    RED,  # card_type_refused
))
_BEEPS = bytes((1, 0, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 1, 3, 3, 3, 3, 2, 3, 3, 3))


def colour(reason):
    return _COLOUR[reason] if 0 <= reason < len(_COLOUR) else RED


def beeps(reason):
    return _BEEPS[reason] if 0 <= reason < len(_BEEPS) else 3


def charged(reason):
    return reason == E.R_OK or reason == E.R_RECOVERED
