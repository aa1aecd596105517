# validator: yikatong bus fare validator firmware (JT/T 978 / China T-Union).
# SPDX-License-Identifier: MIT
# No eager imports: boards pull in only the subpackages they need.
VERSION = "0.1.0"
VERSION_NUM = 0x000100  # major << 16 | minor << 8 | patch, as sync INFO carries it
