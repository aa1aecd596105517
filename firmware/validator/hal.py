# validator.hal: the duck-typed interfaces between boards/ and the firmware.
# SPDX-License-Identifier: MIT
#
# Documentation only; importing this module costs nothing at runtime. Each board's
# board.py builds these objects (it is the only code that imports `machine`) and the
# firmware receives them through constructors.
#
# ByteLink  -- a UART-like byte channel (PN532 HSU, PSAM I/O line, sync serial)
#     write(buf, n) -> int              send buf[:n] (MicroPython streams take the length
#                                       argument, so no slice is allocated)
#     readinto(buf) -> int              copy what is available now, 0 (or None) when
#                                       nothing; never blocks longer than a few ms
#     wait(ms) -> bool                  block up to ms until readable; True if readable
#     drain()                           drop everything pending in the receive direction
#
# SpiBus + chip select -- for PN532 over SPI (NXP UM0701-02 §6.2.5)
#     write_readinto(tx, rx)            full duplex, len(tx) == len(rx)
#     cs(level)                         0 = selected, 1 = released
#     The bus may be MSB-first only; the PN532 driver then bit-reverses (table in flash).
#
# Pn532 transport: validator.drivers.pn532_link.Hsu over a ByteLink, or
# validator.drivers.pn532_spi.Spi over an SpiBus (an HSU board never loads the SPI one),
#     send(frame_mv, n), recv(buf, timeout_ms) -> n, ready() -> bool, wakeup()
#
# IsoPort -- one ISO 7816 contact slot (PSAM), validator.link.iso7816
#     link: ByteLink at the slot's baud rate (I/O line, TX and RX may be tied: echo)
#     reset(level)                      RST pin; the clock pin is started by the board
#     echo: bool                        True when TX and RX are wired together
#     set_etu(fi, di)                   optional: switch the line to the rate PPS agreed
#                                       (ISO 7816-3 §9); without it the slot stays at the
#                                       default 372/1
#
# Clock
#     ticks_ms() / ticks_diff(a, b) / ticks_add(a, d)   monotonic, wraps (2**30 on MCUs)
#     now() -> int                      local time, seconds since 2000-01-01 00:00:00
#                                       (small int on 32-bit MCUs until 2034-01-10)
#     set_time(secs)                    set the RTC (sync SET CLOCK)
#     sleep_ms(ms)
#
# NorFlash -- raw NOR with real semantics (erase sets 0xFF, program only clears bits)
#     size, block_size (erase unit), prog_size (max bytes per program call, page)
#     read(addr, buf)                   fill buf from addr
#     program(addr, buf)                AND buf into flash; never crosses a page
#     erase(block)                      set block to 0xFF
#
# Indicator -- passenger feedback (LEDs, buzzer, display)
#     show(reason, amount, balance)     reason = validator.errors.R_*, amounts in fen;
#                                       must start the pattern and return (no sleeping)
#     idle()                            back to the "present card" state
#
# Board -- built by boards/<name>/board.py: make_board() -> Board with
#     name, device_id (bytes 4), clock, indicator, flash (NorFlash), flash_plan
#     (dict region -> (offset, length); None = validator.storage.PLAN_SIM), pn532 (Pn532
#     transport), psam_ports (list of IsoPort: slot 0 = MOT PSAM for T-Union cards,
#     slot 1 = the local issuer's PSAM), urandom(n),
#     sync_cfg (optional dict for validator.sync.service.tasks: "tty"/"link", "listen",
#     "connect"), console_task(v) (optional coroutine: a maintenance console),
#     after_tap(v, result) (optional: a report after each tap, off the tap path)
