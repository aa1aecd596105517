"""formats: the one declarative source of every byte format the validator and the host share.

Host-only: never frozen, never imported by the device. `make formats` (formats.gen) writes
each firmware module's private constant block (only the names it references, only from
entries it is owner or user of), the host mirrors' public names and field lists, and the
field tables of FORMAT.md / PROTOCOL.md / README.md. To add a record field: add a Field to
formats/record.py, run `make formats`, fill the field in the engine; FORMAT.md, the host
decoder and records.csv follow.
"""

from formats import card, device, m1, record, sync

REGISTRY = (
    device.REASONS,
    record.RECORD, record.RECORD_STATUS, record.RECORD_TXFLAGS, record.TEAR_CONTEXT,
    card.CARD, card.INIT, card.DEBIT, card.PROVE, card.EF1E, card.RIDE_FLAGS, card.EF1A,
    device.PSAM_8070, device.SAM_LINK, device.ATR_TS, device.JOURNAL, device.BLACKLIST,
    device.FARE_TABLE, device.FARE_HEADER, device.FARE_LINE, device.FARE_POLICY,
    device.FARE_ACCEPT, device.NEEDS, device.KINDS,
    sync.FRAME, sync.TYPES, sync.RESULTS, sync.KINDS, sync.PAYLOADS, sync.INFO, sync.CONTENT,
    sync.CLOCK_BODY,
    sync.KEYFILE,
    m1.M1_CARD, m1.M1_INFO, m1.M1_TRIP, m1.M1_CTRL,
)
