# validator.app.main: assemble the validator from a board and start it.
# SPDX-License-Identifier: MIT
import micropython

from validator.app import validator


def start(board):
    if hasattr(micropython, "alloc_emergency_exception_buf"):  # absent on the unix port
        micropython.alloc_emergency_exception_buf(100)
    validator.run(board)
