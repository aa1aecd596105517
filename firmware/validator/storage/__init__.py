# validator.storage: record log, tear store, blacklist and parameter store on raw NOR.
# SPDX-License-Identifier: MIT
# Format and recovery rules: FORMAT.md. Only the sim flash plan is imported here
# (validator.storage.PLAN_SIM, the default plan); the esp32s3 board and host tools import
# PLAN_ESP32S3_16M from validator.storage.plan_boards, so the sim validator's heap never
# holds it.
from validator.storage.plan import PLAN_SIM  # noqa: F401
