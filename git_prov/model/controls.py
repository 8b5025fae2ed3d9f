"""Control characters, and how they are shown: the one table behind every escape of text
from a ledger — :func:`git_prov.model.record.printable` and :mod:`git_prov.terminal`, the
one path to a terminal.

A control character is what a terminal may act on or a reader may split a line at: C0 and
C1 controls (ESC, BEL, CR, CSI …), DEL, the Unicode line and paragraph separators
(Python's ``str.splitlines()`` breaks on them) and the bidirectional overrides of "Trojan
Source" text. Each is shown as a visible escape: ``\\n``, ``\\r``, ``\\t`` by name, the
rest as ``\\x1b`` or ``\\u202e``.

Pure and cheap to import (only :mod:`re`): the quick path of :mod:`git_prov.entry` loads
it through the terminal module.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Beyond C0 (U+0000–U+001F): DEL and C1, line/paragraph separators, bidi overrides.
_BEYOND_C0 = "\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def control_pattern(keep: str = "") -> re.Pattern[str]:
    """A pattern matching each control character, except the C0 ones in ``keep`` (a view
    made of lines keeps ``"\\t\\n"``; one line of it keeps ``"\\t"``)."""
    c0 = "".join(f"\\x{code:02x}" for code in range(0x20) if chr(code) not in keep)
    return re.compile(f"[{c0}{_BEYOND_C0}]")


class Controls:
    """The control characters but those in ``keep`` (:func:`control_pattern`), found and
    replaced in text; the pattern is compiled only for text that may hold one.

    Compiling it costs more than most commands print (a class of characters beyond
    Latin-1: ~3 M instructions each, issue 18), while every control character is
    non-printable to ``str.isprintable`` (C0, DEL and C1 are category Cc, the separators
    Zl and Zp, the bidi overrides Cf): text that is printable once the kept characters are
    set aside holds none, and is answered without the pattern. Other text (a kept
    character is no control, but e.g. a no-break space is not printable either) goes
    through the pattern, so the answer is the pattern's in every case."""

    __slots__ = ("_keep", "_pattern")

    def __init__(self, keep: str = "") -> None:
        self._keep = keep
        self._pattern: re.Pattern[str] | None = None

    @property
    def pattern(self) -> re.Pattern[str]:
        """The compiled pattern (compiled on first use)."""
        if self._pattern is None:
            self._pattern = control_pattern(self._keep)
        return self._pattern

    def _none_in(self, text: str) -> bool:
        for char in self._keep:
            text = text.replace(char, " ")
        return text.isprintable()

    def search(self, text: str) -> re.Match[str] | None:
        """The first control character in ``text``, as ``pattern.search``."""
        return None if self._none_in(text) else self.pattern.search(text)

    def sub(self, repl: str | Callable[[re.Match[str]], str], text: str) -> str:
        """``text`` with each control character replaced, as ``pattern.sub`` (a str)."""
        return str(text) if self._none_in(text) else self.pattern.sub(repl, text)


def shown(match: re.Match[str]) -> str:
    """The visible escape of the control character ``match`` found (a ``re.sub``
    replacement)."""
    char = match.group()
    if char in NAMED:
        return NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
