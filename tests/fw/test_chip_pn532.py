# Tier 1: the emulated PN532's host command set, frame by frame (UM0701 §6.2, §7), as host
# drivers written against real chips use it (nfcpy, Adafruit). Runs on MicroPython and
# CPython.
from emu import picc as picc_mod
from emu import pn532 as emu
from emu.echo_card import EchoCard, TypeBEchoCard

MP_HEAP = "256k"  # fixtures: the emulated PN532 with its ISO 14443 card layer (emu.picc)

PREAMBLE = b"\x00" * 10  # nfcpy's long preamble: ten 00, no 55
ACK = emu.ACK


class SevenByteUidCard(EchoCard):
    atqa = b"\x44\x00"  # ATQA 0044 on air, LSB first: double-size UID

    def __init__(self):
        EchoCard.__init__(self, uid=b"\x04\x0c\x60\x63\x0c\x08\x8a")


def host_frame(code, params=b""):
    body = bytes((0xD4, code)) + bytes(params)
    n = len(body)
    if n > 255:
        head = bytes((0, 0, 0xFF, 0xFF, 0xFF, n >> 8, n & 0xFF, (-((n >> 8) + (n & 0xFF))) & 0xFF))
    else:
        head = bytes((0, 0, 0xFF, n, (-n) & 0xFF))
    return head + body + bytes(((-sum(body)) & 0xFF, 0))


def parse(out):
    """The chip's bytes -> list of ("ack",) / ("err",) / ("data", payload after D5 xx)."""
    frames = []
    i = 0
    while i < len(out):
        j = out.find(b"\x00\xff", i)
        if j < 0:
            break
        ln, lcs = out[j + 2], out[j + 3]
        if ln == 0 and lcs == 0xFF:
            frames.append(("ack",))
            i = j + 5
            continue
        start = j + 4
        if ln == 0xFF and lcs == 0xFF:
            ln = out[j + 4] << 8 | out[j + 5]
            start = j + 7
        body = out[start: start + ln]
        assert (sum(body) + out[start + ln]) & 0xFF == 0, "bad DCS from the emulator"
        if body == b"\x7f":
            frames.append(("err",))
        else:
            frames.append(("data", body[0], body[1], bytes(body[2:])))
        i = start + ln + 2
    return frames


def run(core, code, params=b"", pre=b""):
    core.feed(pre + host_frame(code, params))
    return parse(core.take())


def answer(core, code, params=b"", pre=b""):
    """ACK then the answer to `code`; returns the answer data."""
    f = run(core, code, params, pre)
    assert f[0] == ("ack",), f
    assert len(f) == 2 and f[1][0] == "data", f
    assert f[1][1] == 0xD5 and f[1][2] == code + 1
    return f[1][3]


def awake(field=None):
    field = field or emu.Field()
    core = emu.Pn532Core(field)
    answer(core, 0x14, b"\x01\x14\x00", pre=PREAMBLE)
    return field, core


def test_pn532_emu_when_woken_by_ten_zero_bytes_it_answers():
    core = emu.Pn532Core(emu.Field())
    assert answer(core, 0x02, pre=PREAMBLE) == b"\x32\x01\x06\x07"


def test_pn532_emu_when_woken_by_55_preamble_it_answers():
    core = emu.Pn532Core(emu.Field())
    assert answer(core, 0x02, pre=b"\x55\x55\x00\x00\x00") == b"\x32\x01\x06\x07"


def test_pn532_emu_when_asleep_a_bare_frame_gets_no_answer():
    core = emu.Pn532Core(emu.Field())
    assert run(core, 0x02) == []  # the waking bytes are the frame's own start code
    assert core.lost_bytes == emu.WAKE_LOST_BYTES
    assert answer(core, 0x02) == b"\x32\x01\x06\x07"  # now awake: no preamble needed


def test_pn532_emu_when_power_down_answers_0_then_sleeps_until_hsu_preamble():
    field, core = awake()
    assert answer(core, 0x16, b"\x10\x00") == b"\x00"  # WakeUpEnable: HSU
    assert core.asleep
    assert run(core, 0x02) == []
    assert answer(core, 0x02, pre=PREAMBLE) == b"\x32\x01\x06\x07"


def test_pn532_emu_when_power_down_without_hsu_wakeup_stays_asleep():
    field, core = awake()
    assert answer(core, 0x16, b"\x20") == b"\x00"  # SPI only
    assert run(core, 0x02, pre=PREAMBLE) == []


def test_pn532_emu_when_power_down_the_field_goes_off_and_targets_are_gone():
    field, core = awake()
    card = EchoCard()
    field.place(card)
    assert answer(core, 0x4A, b"\x01\x00")[0] == 1
    answer(core, 0x16, b"\x10")
    assert not core.rf_on and core.targets == [] and card.deselects >= 1


def test_pn532_emu_when_baud_rate_set_it_applies_after_the_host_ack():
    field, core = awake()
    assert answer(core, 0x10, b"\x07") == b""  # 921600 (§7.2.8 BR index 7)
    assert core.baud == 115200
    core.feed(ACK)
    assert core.baud == 921600
    core.feed(host_frame(0x02), baud=115200)  # the host forgot to follow: framing errors
    assert core.take() == b""
    core.feed(host_frame(0x02), baud=921600)
    assert parse(core.take())[1][3] == b"\x32\x01\x06\x07"


def test_pn532_emu_when_baud_rate_index_invalid_syntax_error():
    field, core = awake()
    assert run(core, 0x10, b"\x09") == [("ack",), ("err",)]


def test_pn532_emu_when_registers_written_they_read_back():
    field, core = awake()
    answer(core, 0x08, b"\x63\x03\x00\x63\x05\x40")  # CIU_RxMode 00, CIU_TxAuto 40
    assert answer(core, 0x06, b"\x63\x03\x63\x05\x63\x02") == b"\x00\x40\x80"


def test_pn532_emu_when_field_on_tx_control_shows_it():
    field, core = awake()
    assert answer(core, 0x06, b"\x63\x04")[0] & 0x03 == 0  # off at power-up
    answer(core, 0x32, b"\x01\x01")
    assert answer(core, 0x06, b"\x63\x04")[0] & 0x03 == 0x03


def test_pn532_emu_when_type_a_poll_finds_nothing_fifo_holds_sens_req():
    field, core = awake()
    answer(core, 0x32, b"\x05\x01\x00\x01")
    assert answer(core, 0x4A, b"\x01\x00") == b"\x00"
    assert answer(core, 0x06, b"\x63\x39") == b"\x26"  # what nfcpy checks


def test_pn532_emu_when_general_status_asked_it_lists_targets():
    field, core = awake()
    field.place(EchoCard())
    answer(core, 0x4A, b"\x01\x00")
    assert answer(core, 0x04) == b"\x00\x00\x01\x01\x00\x00\x00\x00"


def test_pn532_emu_when_diagnose_line_test_it_echoes_an_extended_frame():
    field, core = awake()
    data = b"\x00" + bytes(i & 0xFF for i in range(262))
    assert answer(core, 0x00, data) == data
    assert answer(core, 0x00, b"\x01") == b"\x00"  # ROM test
    assert answer(core, 0x00, b"\x02") == b"\x00"  # RAM test


def test_pn532_emu_when_7_byte_uid_card_sens_res_is_00_44():
    # real captures: d5 4b 01 01 00 44 00 07 04 .. (SENS_RES MSB first)
    field, core = awake()
    field.place(SevenByteUidCard())
    r = answer(core, 0x4A, b"\x01\x00")
    assert r[:7] == b"\x01\x01\x00\x44\x20\x07\x04"


def test_pn532_emu_when_tunion_card_listed_sens_res_is_00_44():
    from emu import issuer

    field, core = awake()
    field.place(issuer.issue_card(issuer.load_master_keys(), seed=3))
    r = answer(core, 0x4A, b"\x01\x00")
    assert r[2:4] == b"\x00\x44" and r[5] == 7


def test_pn532_emu_when_type_b_without_afi_syntax_error():
    field, core = awake()
    field.place(TypeBEchoCard())
    assert run(core, 0x4A, b"\x01\x03") == [("ack",), ("err",)]
    assert answer(core, 0x4A, b"\x01\x03\x00")[0] == 1


def test_pn532_emu_when_waiting_poll_aborted_it_never_answers_later():
    field, core = awake()  # MxRtyPassiveActivation FF: the chip waits for a card
    assert run(core, 0x4A, b"\x01\x00") == [("ack",)]
    core.feed(ACK)  # the host gave up: ACK aborts (§6.2.1.3)
    field.place(EchoCard())
    assert core.take() == b""


def test_pn532_emu_when_new_command_sent_while_poll_waits_only_it_is_answered():
    field, core = awake()
    assert run(core, 0x4A, b"\x01\x00") == [("ack",)]
    assert answer(core, 0x02) == b"\x32\x01\x06\x07"
    field.place(EchoCard())
    assert core.take() == b""


def test_pn532_emu_when_waiting_poll_not_aborted_card_arrival_answers_it():
    field, core = awake()  # what a real chip does (Adafruit's IRQ-driven listen relies on it)
    assert run(core, 0x4A, b"\x01\x00") == [("ack",)]
    field.place(EchoCard())
    f = parse(core.take())
    assert f[0][3][0] == 1


def test_pn532_emu_when_auto_rats_off_list_has_no_ats_and_thru_does_rats():
    field, core = awake()
    card = EchoCard()
    field.place(card)
    answer(core, 0x12, b"\x00")  # SetParameters: automatic RATS off
    r = answer(core, 0x4A, b"\x01\x00")
    assert r == b"\x01\x01\x00\x04\x20\x04\x01\x02\x03\x04"  # no ATS
    assert answer(core, 0x42, b"\xe0\x80") == b"\x00" + card.ats  # RATS, FSD 256, CID 0
    r = answer(core, 0x42, b"\x02\x00\xb0\x95\x00\x1e")  # I-block 0
    assert r == b"\x00\x02\x00\xb0\x95\x00\x1e\x90\x00"
    assert answer(core, 0x42, b"\xb3") == b"\x00\xa2"  # R(NAK) other block: R(ACK), rule 12
    assert answer(core, 0x42, b"\xc2") == b"\x00\xc2"  # S(DESELECT)
    assert answer(core, 0x42, b"\x03\x00\x84\x00\x00\x04") == b"\x01"  # halted: silent


def test_pn532_emu_when_auto_rats_on_list_includes_the_ats():
    field, core = awake()
    card = EchoCard()
    field.place(card)
    r = answer(core, 0x4A, b"\x01\x00")
    assert r[10:] == card.ats


def test_pn532_emu_when_type_b_deselected_wupb_and_attrib_reactivate_it():
    # nfcpy's sense_ttb: S(DESELECT) CID 1 and WUPB through InCommunicateThru, then ATTRIB
    field, core = awake()
    card = TypeBEchoCard()
    field.place(card)
    r = answer(core, 0x4A, b"\x01\x03\x00")
    assert r[2:14] == card.atqb and r[14:] == b"\x01\x01"  # ATTRIB_RES: MBLI 0, CID 1
    assert answer(core, 0x42, b"\xca\x01") == b"\x00\xca\x01"
    assert answer(core, 0x42, b"\x05\x00\x08") == b"\x00" + card.atqb  # WUPB
    attrib = b"\x1d" + card.atqb[1:5] + b"\x00\x08\x01\x00"
    assert answer(core, 0x42, attrib) == b"\x00\x00"
    apdu = b"\x00\x84\x00\x00\x08"
    assert answer(core, 0x42, b"\x02" + apdu) == b"\x00\x02" + apdu + b"\x90\x00"


def test_pn532_emu_when_reqb_after_halt_no_answer():
    field, core = awake()
    card = TypeBEchoCard()
    field.place(card)
    answer(core, 0x4A, b"\x01\x03\x00")
    answer(core, 0x42, b"\xca\x01")
    assert answer(core, 0x42, b"\x05\x00\x00") == b"\x01"  # REQB: a halted card is silent


def test_pn532_emu_when_in_select_unknown_target_status_27():
    field, core = awake()
    field.place(EchoCard())
    answer(core, 0x4A, b"\x01\x00")
    assert answer(core, 0x54, b"\x01") == b"\x00"
    assert answer(core, 0x54, b"\x02") == b"\x27"


def test_pn532_emu_when_auto_poll_finds_iso14443_4_a_card():
    field, core = awake()
    card = EchoCard()
    field.place(card)
    r = answer(core, 0x60, b"\x01\x01\x20\x23")
    assert r[:3] == bytes((1, 0x20, len(r) - 3)) and r[3] == 1
    assert r[-len(card.ats):] == card.ats


def test_pn532_emu_when_auto_poll_finds_nothing_with_finite_polls_nbtg_0():
    field, core = awake()
    assert answer(core, 0x60, b"\x01\x01\x20") == b"\x00"


def test_pn532_emu_when_auto_poll_type_unknown_syntax_error():
    field, core = awake()
    assert run(core, 0x60, b"\x01\x01\x99") == [("ack",), ("err",)]


def test_pn532_emu_when_in_data_exchange_answer_is_long_picc_chains_it():
    field, core = awake()
    card = EchoCard(answer_len=600)
    field.place(card)
    answer(core, 0x4A, b"\x01\x00")
    r = answer(core, 0x40, b"\x01\x00\xb0\x00\x00\x00")
    assert r[0] == 0x40  # MI: more follows over the host link too
    picc = field.picc(card)
    assert picc.state == picc_mod.PROTOCOL and picc.fsd == 64  # the chip's RATS: FSD 64
    got = r[1:]
    while True:
        r = answer(core, 0x40, b"\x01")
        got += r[1:]
        if not r[0] & 0x40:
            break
    assert got == bytes(i & 0xFF for i in range(600)) + b"\x90\x00"


def test_pn532_emu_when_sam_mode_invalid_syntax_error():
    field, core = awake()
    assert run(core, 0x14, b"\x05") == [("ack",), ("err",)]
    assert run(core, 0x14, b"\x02") == [("ack",), ("err",)]  # virtual card needs Timeout


def test_pn532_emu_when_set_parameters_rfu_bit_set_syntax_error():
    field, core = awake()
    assert run(core, 0x12, b"\x80") == [("ack",), ("err",)]


class SlowCard(EchoCard):
    wtx = 2  # a phone wallet: two S(WTX) requests before each answer


def test_pn532_emu_when_card_asks_wtx_thru_host_must_grant_each_then_answer():
    field, core = awake()
    card = SlowCard()
    field.place(card)
    answer(core, 0x12, b"\x00")
    answer(core, 0x4A, b"\x01\x00")
    answer(core, 0x42, b"\xe0\x80")
    assert answer(core, 0x42, b"\x02\x00\x84\x00\x00\x04") == b"\x00\xf2\x01"
    assert answer(core, 0x42, b"\xf2\x01") == b"\x00\xf2\x01"
    assert answer(core, 0x42, b"\xf2\x01") == b"\x00\x02\x00\x84\x00\x00\x04\x90\x00"
    assert answer(core, 0x42, b"\xf2\x01") == b"\x01"  # no WTX pending: silence


def test_pn532_emu_when_card_asks_wtx_chip_grants_it_for_in_data_exchange():
    field, core = awake()
    card = SlowCard()
    field.place(card)
    answer(core, 0x4A, b"\x01\x00")
    assert answer(core, 0x40, b"\x01\x00\x84\x00\x00\x04") == b"\x00\x00\x84\x00\x00\x04\x90\x00"
    assert field.picc(card).wtx_requests == 2


def test_pn532_emu_when_sam_mode_wired_polls_do_not_reach_the_field():
    field, core = awake()
    field.place(EchoCard())
    answer(core, 0x32, b"\x05\x01\x00\x01")
    answer(core, 0x14, b"\x03")  # wired card: the host talks to the (absent) SAM
    assert answer(core, 0x4A, b"\x01\x00") == b"\x00"
    answer(core, 0x14, b"\x01\x14\x00")  # back to normal mode
    assert answer(core, 0x4A, b"\x01\x00")[0] == 1
