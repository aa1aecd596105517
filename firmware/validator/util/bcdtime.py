# validator.util.bcdtime: device time <-> BCD date-time, allocation-free.
# SPDX-License-Identifier: MIT
#
# Device time is local time in seconds since 2000-01-01 00:00:00 (hal.Clock.now()).
# Cards and PSAMs use 7-byte BCD YYYYMMDDhhmmss (JT/T 978 / PBOC) and 4-byte YYYYMMDD.
# Civil-date conversion follows H. Hinnant's days_from_civil / civil_from_days
# algorithms; every intermediate stays a small int, so nothing is allocated.
from micropython import const

_DAYS_1970_TO_2000 = const(10957)


def days_from_civil(y, m, d):
    if m <= 2:
        y -= 1
    era = y // 400
    yoe = y - era * 400
    mp = m + 9 if m <= 2 else m - 3
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468 - _DAYS_1970_TO_2000


def secs(y, mo, d, h=0, mi=0, s=0):
    return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s


def pack_date(t, buf, off):
    """Write YYYYMMDD (4 bytes BCD) for device time t at buf[off]."""
    z = t // 86400 + _DAYS_1970_TO_2000 + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    if m <= 2:
        y += 1
    # BCD byte of v < 100: tens in the high nibble (no helper: a function is heap on the MCU)
    c = y // 100
    y %= 100
    buf[off] = c // 10 << 4 | c % 10
    buf[off + 1] = y // 10 << 4 | y % 10
    buf[off + 2] = m // 10 << 4 | m % 10
    buf[off + 3] = d // 10 << 4 | d % 10


def pack_datetime(t, buf, off):
    """Write YYYYMMDDhhmmss (7 bytes BCD) for device time t at buf[off]."""
    pack_date(t, buf, off)
    r = t % 86400
    h = r // 3600
    mi = r // 60 % 60
    r %= 60
    buf[off + 4] = h // 10 << 4 | h % 10
    buf[off + 5] = mi // 10 << 4 | mi % 10
    buf[off + 6] = r // 10 << 4 | r % 10


def unpack_date(buf, off):
    """Device time of 00:00 on a 4-byte BCD date; -1 if not a valid BCD date."""
    for i in range(4):
        b = buf[off + i]
        if (b >> 4) > 9 or (b & 0x0F) > 9:
            return -1
    c = buf[off]
    y = buf[off + 1]
    y = ((c >> 4) * 10 + (c & 0x0F)) * 100 + (y >> 4) * 10 + (y & 0x0F)
    m = buf[off + 2]
    m = (m >> 4) * 10 + (m & 0x0F)
    d = buf[off + 3]
    d = (d >> 4) * 10 + (d & 0x0F)
    if m < 1 or m > 12 or d < 1 or d > 31:
        return -1
    return days_from_civil(y, m, d) * 86400


def unpack_datetime(buf, off):
    """Device time of a 7-byte BCD date-time; -1 if invalid."""
    t = unpack_date(buf, off)
    if t < 0:
        return -1
    for i in range(4, 7):
        b = buf[off + i]
        if (b >> 4) > 9 or (b & 0x0F) > 9:
            return -1
    h = buf[off + 4]
    h = (h >> 4) * 10 + (h & 0x0F)
    mi = buf[off + 5]
    mi = (mi >> 4) * 10 + (mi & 0x0F)
    s = buf[off + 6]
    s = (s >> 4) * 10 + (s & 0x0F)
    if h > 23 or mi > 59 or s > 59:
        return -1
    return t + h * 3600 + mi * 60 + s
