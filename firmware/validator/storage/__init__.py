# validator.storage: record log, tear store, blacklist and parameter store on raw NOR.
# SPDX-License-Identifier: MIT
# Format and recovery rules: FORMAT.md. Only the (tiny) flash plans are imported here;
# boards read them as validator.storage.PLAN_SIM / PLAN_ESP32S3_16M.
from validator.storage.plan import PLAN_ESP32S3_16M, PLAN_SIM  # noqa: F401
