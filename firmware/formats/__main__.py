import sys

from formats.gen import main

sys.exit(main())
