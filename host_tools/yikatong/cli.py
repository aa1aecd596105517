"""The `ykt` console script: bootstrap the application tree, then run ykt.cli."""

import sys


def main(argv=None):
    import yikatong

    yikatong.bootstrap()
    from ykt.cli import main as ykt_main

    return ykt_main(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
