# network (shim): a Wi-Fi station on the unix port. It is connected while the station was
# asked to join and the host says the terminus network is in range (ctl frame b"N", see
# boards/shim/machine.py); sockets are the host's own, so the depot is reached over
# real TCP. Only what boards/esp32s3_pn532/board.py uses (heap: see machine.py).
# SPDX-License-Identifier: MIT
import machine

STA_IF = 0


class WLAN:
    def __init__(self, iface=STA_IF):
        self.on = False

    def active(self, v):
        self.on = bool(v)

    def connect(self, ssid=None, key=None):
        machine._net[1] = 1
        machine._send(0x4E, 0, 1, 0)

    def isconnected(self):
        machine._pump()
        return bool(self.on and machine._net[1] and machine._net[0])
