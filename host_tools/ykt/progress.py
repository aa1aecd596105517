"""ykt.progress: one progress bar for long work (a card population, a sync's pulls and
pushes), on stderr so stdout stays the command's report. --progress auto shows it only
when stderr is a terminal: logs and pipes get no carriage returns."""

import sys
import time

MODES = ("auto", "always", "never")


def add_option(p, what):
    p.add_argument("--progress", choices=MODES, default="auto",
                   help="progress bar on stderr for %s: auto = only when stderr is a "
                   "terminal (default), always, never" % what)


class Bar:
    def __init__(self, mode, label, out=None):
        self.out = out or sys.stderr
        self.on = mode == "always" or (mode == "auto" and self.out.isatty())
        self.label = label
        self.t0 = time.monotonic()
        self.last = 0.0

    def __call__(self, done, total):
        if not self.on:
            return
        now = time.monotonic()
        if now - self.last < 0.1 and done < total:
            return
        self.last = now
        w = 30
        f = int(w * done / total) if total else w
        rate = done / max(now - self.t0, 1e-6)
        self.out.write("\r%-10s [%s%s] %d/%d %.0f/s " % (
            self.label, "#" * f, "." * (w - f), done, total, rate))
        if done >= total:
            self.out.write("\n")
        self.out.flush()
