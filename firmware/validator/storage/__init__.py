# validator.storage: record log, tear store, blacklist and parameter store on raw NOR.
# SPDX-License-Identifier: MIT
# Format and recovery rules: FORMAT.md. Only the sim flash plan is imported here; boards
# read validator.storage.PLAN_SIM / PLAN_ESP32S3_16M (the latter from storage.plan_boards,
# on demand, through __getattr__ below: the sim validator's heap never holds it).
from validator.storage.plan import PLAN_SIM  # noqa: F401


def __getattr__(name):
    if name == "PLAN_ESP32S3_16M":
        from validator.storage.plan_boards import PLAN_ESP32S3_16M

        return PLAN_ESP32S3_16M
    # MicroPython asks a package's __getattr__ before it imports the submodule named in
    # `from validator.storage import record`, and does not fall back when it raises: import
    # it here (the import also stores it in this package's globals for the next lookup)
    import sys

    name = "validator.storage." + name
    __import__(name)
    return sys.modules[name]
