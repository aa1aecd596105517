# Freeze the validator firmware and this board's glue into an ESP32-S3 MicroPython build:
#   make -C ports/esp32 BOARD=ESP32_GENERIC_S3 \
#        FROZEN_MANIFEST=<repo>/boards/esp32s3_pn532/manifest.py
include("$(PORT_DIR)/boards/manifest.py")  # noqa: F821 -- manifest API
package("validator", base_path="../../firmware")  # noqa: F821
module("main.py", base_path="../../firmware")  # noqa: F821
module("board.py")  # noqa: F821
module("wiring.py")  # noqa: F821
