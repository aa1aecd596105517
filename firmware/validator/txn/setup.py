# validator.txn.setup: build the tap engine from a board (boot path, not the tap path).
# SPDX-License-Identifier: MIT
#
# Brings up every PSAM slot the board has (reset, ATR, PPS, EF16/DF/EF17: card-protocol.md
# §4): slot `slot` (0) = the MOT PSAM for T-Union cards (DF 8011), slot `local_slot` (1) =
# the local issuer's PSAM for the city's own MOHURD cards (sam.psam DF_LOCAL), then builds
# the Transaction, which picks the PSAM per card application. A missing or wrong
# PSAM is not an exception here: that slot stays not `ready` and its application's cards
# get R_SAM_FAULT; when no PSAM at all is ready the caller gets R_SAM_FAULT back and puts
# the validator in that fault state (every tap refused). psam.boot() can be retried later
# (e.g. from a maintenance command).
from validator.errors import R_OK, R_SAM_FAULT, SamError
from validator.link.iso7816 import Iso7816
from validator.sam.psam import Psam
from validator.txn.transaction import Transaction


def _boot(board, slot, local):
    """A Psam on board.psam_ports[slot], booted if it answers; None if no such port."""
    ports = board.psam_ports
    if slot is None or slot < 0 or slot >= len(ports):
        return None
    link = Iso7816(ports[slot], board.clock)
    psam = Psam(link, link.power_up, local)
    try:
        psam.boot()
    except SamError:
        pass  # psam.ready stays False: this slot's cards get R_SAM_FAULT
    return psam


def build(board, reader, policy, records, tears, blacklist, local_city=0, slot=0,
          local_slot=1, **kw):
    """-> (Transaction, fault): fault is R_OK when at least one PSAM booted, R_SAM_FAULT
    when none did (absent, silent or wrong in every slot).

    board needs clock, device_id and psam_ports (hal.IsoPort list); reader is the
    ISO 14443 reader (transmit); policy, records, tears, blacklist as Transaction takes
    them (mounted). local_slot=None (or a board with one port) = no local application.
    Per-slot state afterwards: txn.psam.ready (MOT), txn.local_psam (None or .ready).
    Extra keywords go to Transaction (position, vehicle, windows...)."""
    psam = _boot(board, slot, False)
    if psam is None:
        psam = Psam(None)  # never booted: ready stays False, T-Union taps get R_SAM_FAULT
    local = _boot(board, local_slot, True) if local_slot != slot else None
    fault = R_OK if psam.ready or (local is not None and local.ready) else R_SAM_FAULT
    txn = Transaction(reader, psam, board.clock, policy, records, tears, blacklist,
                      local_city=local_city, device_id=board.device_id, psam_slot=slot,
                      local_psam=local, local_slot=local_slot or 0, **kw)
    return txn, fault
