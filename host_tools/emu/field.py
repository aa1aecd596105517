# emu.field: the contract between emulated cards and the emulated PN532's RF field.
# SPDX-License-Identifier: MIT
#
# Any object placed in the field (emu.pn532.Field.place(card)) offers:
#   kind        "A" (ISO 14443-3A) or "B" (ISO 14443-3B)
#   uid         bytes: type A UID (4, 7 or 10 bytes); type B: PUPI (4 bytes)
#   atqa, sak   type A: ATQA/SENS_RES (2 bytes, as sent on air, LSB first) and SAK (int);
#               SAK bit 0x20 = ISO 14443-4 compliant (ISO 14443-3 §6.5.3.4)
#   ats         type A: the ATS answered to RATS, starting with TL (ISO 14443-4 §5.2)
#   atqb        type B: ATQB (12 bytes incl. 0x50 header); attrib_resp: bytes answered to ATTRIB
#   apdu(cmd) -> bytes   one ISO 7816-4 command APDU in, response data + SW1 SW2 out
#   deselect()  the reader released/deselected the card or the field was reset: drop the
#               selected application and any volatile session state
# A card that leaves the field in the middle of an exchange raises CardGone from apdu();
# the field then removes it (the reader sees a timeout, exactly as with a real tear).


class CardGone(Exception):
    pass
