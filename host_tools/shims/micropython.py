# micropython shim for CPython: lets firmware modules that run under the
# MicroPython unix port also import under CPython (host tools, pytest).
# Never put this folder on MICROPYPATH: a file module shadows the built-in.
# SPDX-License-Identifier: MIT


def const(x):
    return x


def native(f):
    return f


viper = native


def heap_lock():
    return 0


def heap_unlock():
    return 0


def mem_peak():
    return 0


def alloc_emergency_exception_buf(n):
    pass


def schedule(f, arg):
    f(arg)
