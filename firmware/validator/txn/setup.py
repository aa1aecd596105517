# validator.txn.setup: build the tap engine from a board (boot path, not the tap path).
# SPDX-License-Identifier: MIT
#
# Brings up the PSAM slot (reset, ATR, PPS, EF16/DF 8011/EF17: card-protocol.md §4) and
# builds the Transaction. A missing or wrong PSAM is not an exception here: the caller gets
# R_SAM_FAULT back and puts the validator in that fault state (every tap refused), as the
# issue asks; psam.boot() can be retried later (e.g. from a maintenance command).
from validator.errors import R_OK, R_SAM_FAULT, SamError
from validator.link.iso7816 import Iso7816
from validator.sam.psam import Psam
from validator.txn.transaction import Transaction


def build(board, reader, policy, records, tears, blacklist, local_city=0, slot=0, **kw):
    """-> (Transaction, fault): fault is R_OK, or R_SAM_FAULT when the PSAM in
    board.psam_ports[slot] is absent, silent or not a MOT PSAM.

    board needs clock, device_id and psam_ports (hal.IsoPort list); reader is the
    ISO 14443 reader (transmit); policy, records, tears, blacklist as Transaction takes
    them (mounted). Extra keywords go to Transaction (position, vehicle, windows...)."""
    psam = None
    fault = R_SAM_FAULT
    ports = board.psam_ports
    if slot < len(ports):
        link = Iso7816(ports[slot], board.clock)
        psam = Psam(link, link.power_up)
        try:
            psam.boot()
            fault = R_OK
        except SamError:
            fault = R_SAM_FAULT
    if psam is None:
        psam = Psam(None)  # never booted: ready stays False, taps get R_SAM_FAULT
    txn = Transaction(reader, psam, board.clock, policy, records, tears, blacklist,
                      local_city=local_city, device_id=board.device_id, psam_slot=slot, **kw)
    return txn, fault
