"""emu.gps: an NMEA 0183 GPS receiver's output (CPython only): RMC and GGA sentences,
the two the esp32s3 board parses (NMEA 0183 v4.10 §§ GGA, RMC; checksum = XOR of the
characters between '$' and '*', two hex digits).

    g = Gps(lat=31.2304, lon=121.4737); g.fix = True
    uart_write(g.sentences(unix_time))   # once a second, like a 1 Hz receiver
"""

import datetime


def checksum(body):
    c = 0
    for ch in body.encode("ascii"):
        c ^= ch
    return "%02X" % c


def sentence(body):
    return "$%s*%s\r\n" % (body, checksum(body))


def _dm(v, deg_digits):
    a = abs(v)
    d = int(a)
    m = (a - d) * 60
    return "%0*d%07.4f" % (deg_digits, d, m)


class Gps:
    def __init__(self, lat=31.2304, lon=121.4737, speed_kn=0.0, course=0.0):
        self.lat, self.lon = lat, lon
        self.speed_kn, self.course = speed_kn, course
        self.fix = False
        self.sats = 8

    def move_to(self, lat, lon):
        self.lat, self.lon = lat, lon

    def sentences(self, unix_time):
        t = datetime.datetime.fromtimestamp(unix_time, datetime.timezone.utc)
        hms = t.strftime("%H%M%S") + ".00"
        lat = _dm(self.lat, 2) + "," + ("N" if self.lat >= 0 else "S")
        lon = _dm(self.lon, 3) + "," + ("E" if self.lon >= 0 else "W")
        if self.fix:
            rmc = "GPRMC,%s,A,%s,%s,%.1f,%.1f,%s,,,A" % (hms, lat, lon, self.speed_kn,
                                                        self.course, t.strftime("%d%m%y"))
            gga = "GPGGA,%s,%s,%s,1,%02d,0.9,12.0,M,8.0,M,," % (hms, lat, lon, self.sats)
        else:
            rmc = "GPRMC,%s,V,,,,,,,%s,,,N" % (hms, t.strftime("%d%m%y"))
            gga = "GPGGA,%s,,,,,0,00,99.9,,,,,," % hms
        return (sentence(rmc) + sentence(gga)).encode("ascii")
