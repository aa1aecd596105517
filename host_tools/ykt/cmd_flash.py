"""ykt flash: provision a validator's flash image (what a field engineer writes at install).

`ykt flash image` builds the validator's data region with a fresh record log and a parameter
store holding the device's sync key blob (`ykt sync-keys`) and its back-office-signed
configuration (city, line, repeat window; a K_CONFIG content container). Write it to the
board's data partition (esp32s3: `esptool.py write_flash 0x400000 ykt.bin`, see
boards/esp32s3_pn532/README.md), or point the unix board's config at it. Fare tables and
blacklists then arrive through the first depot sync.
"""

import json
import os

from ykt import argtypes as T
from ykt.cli import EXIT_USAGE, CommandError, read_bytes

BOARDS = {"sim": (64 << 20, 0), "esp32s3": (32 << 20, 0x400000)}  # flash size, ykt base


def register(sub):
    p = sub.add_parser("flash", help="provision a validator flash image (keys, configuration)")
    s = p.add_subparsers(dest="flash_cmd", metavar="CMD")
    im = s.add_parser("image", help="build a provisioned flash image")
    im.add_argument("--board", choices=sorted(BOARDS), default="sim")
    im.add_argument("--keys-blob", required=True, help="sync key blob from `ykt sync-keys`")
    im.add_argument("--config", required=True,
                    help="signed configuration container, or a JSON file with --content-key; "
                         "keys (all optional): city \"2900\", line 0..65535, repeat_window_s "
                         "0..3600, tear_keep_s 0..86400 (validator/app/content.py)")
    im.add_argument("--content-key", metavar="HEX", type=T.hex_digits(64),
                    help="back-office content key (signs a plain JSON --config; back office only)")
    im.add_argument("--test-keys", action="store_true", help="sign with the TEST content key")
    im.add_argument("-o", "--out", required=True)
    im.set_defaults(func=do_image)


def _config_blob(args):
    from validator.sync import auth_host, wire_host

    data = read_bytes(args.config)
    if data[:4] == b"YKC1":
        return data
    try:
        json.loads(data)
    except ValueError:
        raise CommandError("--config %s: neither a signed content container nor JSON"
                           % args.config, EXIT_USAGE)
    from validator.app import content

    try:
        content.parse_config(data)  # the validator's own check: it would refuse it at boot
    except ValueError as e:
        raise CommandError("--config %s: %s" % (args.config, e), EXIT_USAGE)
    if args.content_key:
        kc = bytes.fromhex(args.content_key)
    elif args.test_keys:
        from depot.devsim import TEST_CONTENT_KEY

        kc = TEST_CONTENT_KEY
    else:
        raise CommandError("a JSON --config needs --content-key (or --test-keys)", EXIT_USAGE)
    return auth_host.make_content(kc, wire_host.K_CONFIG, 1, data)


def do_image(args):
    from emu.nor import NorFlash
    from validator.app import content
    from validator.errors import SyncError
    from validator.storage import PLAN_SIM
    from validator.storage.params import ParamStore
    from validator.storage.plan_boards import partition_plan
    from validator.storage.recordlog import RecordLog
    from validator.sync import auth

    keys = read_bytes(args.keys_blob)
    try:
        dev = auth.parse_keys(keys)[0]
    except SyncError as e:
        raise CommandError("--keys-blob %s: not a sync key blob: %s" % (args.keys_blob, e),
                           EXIT_USAGE)
    cfg = _config_blob(args)
    size, base = BOARDS[args.board]
    plan = PLAN_SIM if args.board == "sim" else partition_plan(base=base)
    if os.path.exists(args.out):
        os.remove(args.out)
    f = NorFlash(size - base, path=args.out, invert=args.board == "sim")
    ps = ParamStore(f, plan["params"]).mount()
    ps.put(content.P_KEYS, keys)
    ps.put(content.P_CONFIG, cfg)
    log = RecordLog(f, plan["log"], plan["watermark"]).mount()
    log.maintain()  # first block erased: the validator can record its first tap at once
    f.close()
    print("flash image %s for device %08X (%s board, %d bytes, params %s)"
          % (args.out, dev, args.board, size - base, ", ".join(sorted(ps.names()))))
    return 0
