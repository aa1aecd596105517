# test_sync_resume: a link cut at every frame boundary and inside frames, then resumed:
# 0 records lost, 0 duplicated in the depot database.
import os

from fw import sync_fixtures as fx

from depot.client import Keyring, SyncClient, SyncFailure
from depot.db import DepotDB
from validator.sync import wire, wire_host
from validator.sync.session import Session

N0 = 45  # records before the first sync; batches of 8, window 2
MAXR = 8
WINDOW = 2
FULL = os.environ.get("YKT_POWERCUT") == "full"
_cleanup = []


def teardown_module(module):
    for p in _cleanup:
        for suffix in ("", "-wal", "-shm"):
            try:
                os.remove(p + suffix)
            except OSError:
                pass


def _rand_factory():
    n = [0]

    def r(k):
        n[0] += 1
        return bytes([(n[0] * 31 + i * 7) & 0xFF for i in range(k)])

    return r


def _rig(tmp_path, name):
    log = fx.real_log_or_none() or fx.MemLog()
    target = fx.make_target(0, log=log)
    for _ in range(N0):
        fx.add_record(log)
    link, h2d, d2h = fx.link_pair()
    sess = Session(link, target, fx.KEYS, _rand_factory(), target.clock)
    port = fx.PumpPort(sess, h2d, d2h)
    # tmpfs when there is one: fsync per batch is the depot's real setting, and it costs
    # disk latency x hundreds of cut cases here
    d = "/dev/shm" if os.path.isdir("/dev/shm") else str(tmp_path)
    db = DepotDB(os.path.join(d, "ykt-%d-%s-%s.sqlite" % (os.getpid(), tmp_path.name, name)))
    _cleanup.append(db.path)
    return log, target, sess, port, h2d, d2h, db


# The host's answer timeout. The cut phase needs a short one (every cut case waits it out
# once); a sync that must succeed gets a long one, so a loaded machine (the device's steps
# run in this process) cannot turn a slow answer into a spurious failure.
CUT_TIMEOUT = 0.02
OK_TIMEOUT = 5.0
# the ACK-loss cases assert that the first session got records before it died: give the
# device time to send them even on a loaded machine (one case each, so it costs little)
LOSS_TIMEOUT = 0.5


def _sync(port, db, timeout=OK_TIMEOUT):
    c = SyncClient(port, Keyring(devices={fx.DEVICE_ID: fx.KD}), timeout=timeout)
    c.connect()
    c.pull(db, window=WINDOW, max_records=MAXR)
    c.bye()
    return c


def _frame_ends(stream):
    """Byte offsets just after each frame in a captured stream."""
    d = wire.Decoder(cap=len(stream) + wire_host.MAX_FRAME)
    d.feed(stream)
    ends = []
    while d.next():
        ends.append(d.lo)
    return ends


def _capture(tmp_path):
    log, target, sess, port, h2d, d2h, db = _rig(tmp_path, "ref")
    h_cap, d_cap = bytearray(), bytearray()
    put_h, put_d = h2d.put, d2h.put

    def cap_h(b, count=-1):
        h_cap.extend(b[:count] if count >= 0 else b)
        return put_h(b, count)

    def cap_d(b, count=-1):
        n = put_d(b, count)
        d_cap.extend(b[:n])
        return n

    h2d.put, d2h.put = cap_h, cap_d
    _sync(port, db)
    assert db.seqs(fx.DEVICE_ID) == list(range(1, N0 + 1))
    return bytes(h_cap), bytes(d_cap)


def _cut_points(stream):
    ends = [0] + _frame_ends(stream)
    pts = set()
    for i, e in enumerate(ends):
        pts.add(e)  # at a frame boundary
        if i + 1 < len(ends):
            nxt = ends[i + 1]
            for k in (1, 6, 11, (nxt - e) // 2, nxt - e - 1):  # inside the frame
                if 0 < k < nxt - e:
                    pts.add(e + k)
    return sorted(pts)


def _check_cut(tmp_path, direction, cut_at, idx):
    log, target, sess, port, h2d, d2h, db = _rig(tmp_path, "c%s%d" % (direction, idx))
    pipe = h2d if direction == "h2d" else d2h
    pipe.budget = cut_at
    try:
        _sync(port, db, CUT_TIMEOUT)
    except SyncFailure:
        pass
    # taps go on while the cable is out
    for _ in range(3):
        fx.add_record(log)
    # reconnect: fresh pipes state on the same device session (the cable is back)
    h2d.budget = d2h.budget = -1
    h2d.clear()
    d2h.clear()
    target.clock.ms += 1500  # the cable was out for a while: the device drops a partial frame
    for _ in range(200):  # the device finishes whatever frame it was sending
        sess.step()
    d2h.clear()
    _sync(port, db)
    want = list(range(1, N0 + 4))
    got = db.seqs(fx.DEVICE_ID)
    assert got == want, (direction, cut_at, "lost", set(want) - set(got))
    for dev, seq, data in db.records(fx.DEVICE_ID):
        assert bytes(data) == fx.stored(log, seq), (direction, cut_at, seq)
    assert log.acked_seq == N0 + 3, (direction, cut_at, log.acked_seq)
    db.close()


def test_sync_when_cut_at_every_frame_boundary_and_inside_frames_nothing_lost_or_doubled(
    tmp_path,
):
    h_stream, d_stream = _capture(tmp_path)
    cases = 0
    for direction, stream in (("d2h", d_stream), ("h2d", h_stream)):
        pts = _cut_points(stream)
        if not FULL:
            pts = pts[::2] + [pts[-1]]
        for i, cut in enumerate(pts):
            _check_cut(tmp_path, direction, cut, i)
            cases += 1
    assert cases > 50  # the host sends one ACK per window of frames (group commit)


def test_sync_when_host_db_has_batch_but_ack_lost_resume_acks_without_duplicates(tmp_path):
    log, target, sess, port, h2d, d2h, db = _rig(tmp_path, "ackloss")
    # deliver everything device->host but lose every host->device byte after AUTH+PULL
    ref_h, _ = _capture(tmp_path)
    pull_end = _frame_ends(ref_h)[2]  # HELLO, AUTH, PULL pass; the first ACK is lost
    h2d.budget = pull_end
    try:
        _sync(port, db, LOSS_TIMEOUT)
    except SyncFailure:
        pass
    assert log.acked_seq == 0 and db.count() > 0
    had = db.count()
    h2d.budget = -1
    h2d.clear()
    for _ in range(100):
        sess.step()
    d2h.clear()
    c = _sync(port, db)
    assert db.seqs(fx.DEVICE_ID) == list(range(1, N0 + 1))
    assert log.acked_seq == N0
    # the resume ACK meant the device did not resend what the depot already held
    rs = target.rec_size
    assert c.bytes_in < (N0 - had) * rs + 800, (c.bytes_in, had)


def test_sync_when_device_rebooted_after_lost_ack_resends_and_db_dedupes(tmp_path):
    log, target, sess, port, h2d, d2h, db = _rig(tmp_path, "reboot")
    ref_h, _ = _capture(tmp_path)
    h2d.budget = _frame_ends(ref_h)[2]  # every ACK of the first session is lost
    try:
        _sync(port, db, LOSS_TIMEOUT)
    except SyncFailure:
        pass
    had = db.count()
    assert log.acked_seq == 0 and had > 0
    # power cycle: a new Session over the same flash; it never sent anything, so the
    # depot's resume ACK is refused (E_RANGE) and the batches come again
    h2d.budget = -1
    h2d.clear()
    d2h.clear()
    sess2 = Session(sess.link, target, fx.KEYS, _rand_factory(), target.clock)
    port2 = fx.PumpPort(sess2, h2d, d2h)
    c = _sync(port2, db)
    assert db.seqs(fx.DEVICE_ID) == list(range(1, N0 + 1))
    assert log.acked_seq == N0
    assert c.bytes_in > had * 20  # the held records really were sent again, and ignored
