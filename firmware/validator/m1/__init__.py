# validator.m1: the city's legacy MIFARE Classic (M1) purse cards (FORMAT.md).
# SPDX-License-Identifier: MIT
