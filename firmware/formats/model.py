"""formats.model: the three kinds of registry entry.

A `Layout` is a byte layout (a flash record, a card file, an APDU answer, a payload): named
fields at fixed offsets. A `Codes` entry is a set of named values (message types, status
codes, flags, kinds) or the scalar constants of a format (lengths, magic words). Both name
an owner module, the firmware modules allowed to use them, the host mirrors that serve them
to CPython callers, and the document whose field table the generator keeps.

Module paths are relative to firmware/validator ("storage/record.py"); documents are
relative to it too ("storage/FORMAT.md"). Host-only; never imported by the device.
"""


class Hex(int):
    """An int the generated code and tables write in hex (an SFI, a tag, a type byte)."""


class Field:
    """One field of a Layout.

    name: upper-case, unique in the layout; the generated constant is prefix + name.
    off, size: bytes. kind: how host decoders render it --
      u8 u16 u32 (big-endian unsigned), i32, hex (bytes as hex), bcd (BCD digits as hex),
      ascii, x8 (u8 as two hex digits), flags8 (u8 bit set, see `codes`), enum8 (u8 named
      by `codes`), none (padding/reserved: not decoded, no host name), secret (a key:
      never decoded or printed).
    column: the host decoder's key (lower-case; "" means not a decoded column).
    codes: for flags8/enum8, the name of the Codes entry that names the bits/values.
    """

    def __init__(self, name, off, size, kind, meaning, column=None, codes=None):
        self.name = name
        self.off = off
        self.size = size
        self.kind = kind
        self.meaning = meaning
        self.column = name.lower() if column is None else column
        self.codes = codes


class Entry:
    def __init__(self, name, title, owner, users=(), hosts=(), doc=None, public=False,
                 listed=False):
        self.name = name  # registry key, also the doc marker
        self.title = title
        self.owner = owner
        if isinstance(users, str) or isinstance(hosts, str):
            raise TypeError("%s: users and hosts are tuples of paths" % name)
        self.users = tuple(users)
        self.hosts = tuple(hosts)
        self.doc = doc
        self.public = public  # the owner defines public names (an API other code reads)
        # the host mirrors also get the list: <NAME>_FIELDS of a layout (what host decoders
        # and CSV columns are built from) or <NAME>_CODES of a code set. Opt-in: tier-1 tests
        # import the mirrors on MicroPython at 128 KiB, where every tuple costs heap.
        self.listed = listed

    def allowed(self, module):
        return module == self.owner or module in self.users


class Layout(Entry):
    """fields at offsets; consts are (name, value, meaning) scalars of the same format
    (its size, version, sentinels). Generated names: prefix + field name, and each const."""

    def __init__(self, name, title, owner, prefix, fields, consts=(), size=None, base=0,
                 **kw):
        super().__init__(name, title, owner, **kw)
        self.prefix = prefix
        self.fields = tuple(fields)
        self.consts = tuple(consts)
        self.size = size  # total bytes, checked against the fields when given
        self.base = base  # offsets are relative to this byte of an enclosing image

    def names(self):
        out = [(self.prefix + f.name, f.off, f.meaning) for f in self.fields]
        return out + list(self.consts)

    def check(self):
        errs = []
        seen = set()
        end = 0
        for f in sorted(self.fields, key=lambda f: f.off):
            if f.name in seen:
                errs.append("%s: field %s twice" % (self.name, f.name))
            seen.add(f.name)
            if f.off < end and f.kind != "alias":
                errs.append("%s: field %s at %d overlaps the field before (ends %d)"
                            % (self.name, f.name, f.off, end))
            if f.kind != "alias":
                end = max(end, f.off + f.size)
        if self.size is not None and end > self.size:
            errs.append("%s: fields end at %d, past its size %d" % (self.name, end, self.size))
        return errs


class Codes(Entry):
    """named values: items are (name, value, meaning)."""

    def __init__(self, name, title, owner, items, hexfmt=False, **kw):
        super().__init__(name, title, owner, **kw)
        self.items = tuple(items)
        self.hexfmt = hexfmt

    def names(self):
        return list(self.items)

    def check(self):
        errs = []
        seen = set()
        for n, _, _ in self.items:
            if n in seen:
                errs.append("%s: %s twice" % (self.name, n))
            seen.add(n)
        return errs
