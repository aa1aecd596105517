import sys

from yikatong.cli import main

sys.exit(main())
