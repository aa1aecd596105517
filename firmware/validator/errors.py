# validator.errors: the one fault hierarchy and the business reason codes.
# SPDX-License-Identifier: MIT
#
# Three failure vocabularies (house style principle 5):
#  (a) internal invariants -> assert (dropped in frozen builds; never for external data);
#  (b) faults -> exceptions below, raised low, caught at the transaction boundary;
#  (c) business outcomes (refusals) -> small-int reason codes R_* returned in a
#      preallocated decision object; they never raise, because raising allocates.
from micropython import const


class ValidatorError(Exception):
    pass


class NfcError(ValidatorError):
    """Reader/link fault: bad frame, chip error status, protocol violation."""


class NfcTimeout(NfcError):
    """No (complete) answer in time: chip silent, or card left the field."""


class CardError(ValidatorError):
    """Card answered a status word the command's table treats as a fault."""

    def __init__(self, sw, code=0):
        super().__init__(sw, code)
        self.sw = sw
        self.code = code


class SamError(ValidatorError):
    """PSAM fault: no ATR, T=0 protocol violation, or an unexpected status word."""

    def __init__(self, sw=0, code=0):
        super().__init__(sw, code)
        self.sw = sw
        self.code = code


class StorageError(ValidatorError):
    pass


class SyncError(ValidatorError):
    pass


# Reason codes (business outcomes). Stable numbers: they go into records, the
# feedback table and the sim summary. Keep validator.util.errors_text.NAMES in the same order.
R_OK = const(0)
R_NO_CARD = const(1)
R_MULTIPLE_CARDS = const(2)
R_BLACKLISTED = const(3)
R_EXPIRED = const(4)
R_NOT_YET_VALID = const(5)
R_APP_BLOCKED = const(6)
R_NOT_INTERCONNECT = const(7)
R_ISSUER_NOT_ACCEPTED = const(8)
R_INSUFFICIENT = const(9)
R_ALREADY_PAID = const(10)
R_TAP_AGAIN = const(11)
R_RECOVERED = const(12)
R_CARD_ERROR = const(13)
R_UNSUPPORTED_CARD = const(14)
R_SAM_FAULT = const(15)
R_STORAGE_FULL = const(16)
R_COMM_ERROR = const(17)
R_FAULT = const(18)
R_NO_TARIFF = const(19)  # no active fare table, or the line is not in it
R_CARD_TYPE_REFUSED = const(20)  # the city policy refuses this card type

def reason_name(code):
    """Host tools' name for a reason code. The names live in util.errors_text, which the
    firmware never imports (a tuple of strings costs heap and qstrs on the device)."""
    from validator.util.errors_text import reason_name as name

    return name(code)
