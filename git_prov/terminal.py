"""The one way text reaches a terminal.

Everything git-prov shows may contain text from a ledger someone else wrote: a command, a
metric name, a path, a tombstone's reason, a log. A terminal obeys control sequences in
that text (clear the screen, retitle the window, write the clipboard with OSC 52, hide a
link behind OSC 8, move the cursor with CR), so nothing reaches it except through
:func:`echo` (and :func:`for_terminal`, for the pager), which show every control character
as a visible escape (``\\x1b``) — except git-prov's *own* colours.

Own colours are told apart without trusting the text: :func:`style` and :func:`own` mark
the codes they emit with a token drawn at random when the process starts, which no ledger
written before can contain; the output path turns marked codes back into real ones and
escapes everything else. Styled text can therefore be concatenated, padded and joined
freely before it is printed.

Human views are always escaped, wherever they go (``git prov log | cat`` still reaches a
terminal). Data formats — CSV, ``--format`` lines, DOT, Mermaid, kept logs — are escaped
on a terminal and written exactly into a pipe or file (``data=True``); JSON escapes
control characters itself. See docs/security.md.

This module imports nothing heavy: the quick path of :mod:`git_prov.entry` uses it too.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Iterable
from typing import TextIO

from git_prov.model.controls import Controls, shown

# The marker of our own codes: NUL, 16 random hex digits, "{"; the code; "}". (os.urandom,
# not the secrets module: that loads hashlib, hmac and random, ~15 modules on sync's path.)
_TOKEN = "\x00" + os.urandom(8).hex() + "{"
_OWN_CODE = r"\x1b\[[0-9;]*m|\x1b\[K|\r"
# What a terminal may act on (model/controls.py), besides the newline and tab a view is
# made of: C0 and C1 controls (ESC, BEL, CR, CSI …), DEL, Unicode line/paragraph
# separators and the bidirectional overrides of "Trojan Source" text.
_CONTROL = Controls(keep="\t\n")
# The same, and newlines: what must not appear inside one line of a view.
_LINE_CONTROL = Controls(keep="\t")
# git-prov's own colour codes as a git-prov process prints them (click.style's): colours,
# bold, dim and their resets.
OWN_SGR = r"\x1b\[(?:0|1|2|22|39|3[0-7]|9[0-7])m"
_COLORS = {
    "black": 30,
    "red": 31,
    "green": 32,
    "yellow": 33,
    "blue": 34,
    "magenta": 35,
    "cyan": 36,
    "white": 37,
}


# The patterns are compiled when first used (re's cache keeps them): a plain record prints
# one line with no colour and needs none of them (issue 18: start-up).


@functools.cache
def _own() -> re.Pattern[str]:
    """Our marked codes: the token, the code (group 1), "}"."""
    return re.compile(re.escape(_TOKEN) + f"({_OWN_CODE})" + r"\}")


def own(code: str) -> str:
    """Mark ``code`` — an SGR colour sequence, erase-line or carriage return that
    git-prov itself sends — so the output path lets it through."""
    if not re.fullmatch(_OWN_CODE, code):
        raise ValueError(f"not a code git-prov sends: {code!r}")
    return _TOKEN + code + "}"


def style(
    text: str, *, fg: str | None = None, bold: bool | None = None, dim: bool | None = None
) -> str:
    """``text`` coloured as ``click.style`` would, with the codes marked as our own."""
    codes = []
    if fg is not None:
        codes.append(f"\x1b[{_COLORS[fg]}m")
    if bold is not None:
        codes.append("\x1b[1m" if bold else "\x1b[22m")
    if dim is not None:
        codes.append("\x1b[2m" if dim else "\x1b[22m")
    return "".join(own(c) for c in codes) + text + own("\x1b[0m")


def plain(text: str, **_: object) -> str:
    """The no-colour style."""
    return text


def adopt(text: str) -> str:
    """Output of a git-prov process we started (the demo's): its colour codes are ours,
    anything else in it stays to be escaped."""
    return re.sub(OWN_SGR, lambda m: own(m.group()), text)


def escape(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``, ``\\r``,
    ``\\u2028``) except newlines and tabs; our own marked codes are dropped."""
    return for_terminal(text, color=False)


def for_terminal(text: str, *, color: bool = True) -> str:
    """``text`` as it may reach a terminal: control characters escaped except newline and
    tab; our own marked codes sent (``color``) or dropped."""
    if "\x00" not in text and not _CONTROL.search(text):
        return text
    out = []
    at = 0
    for match in _own().finditer(text):
        out.append(_CONTROL.sub(shown, text[at : match.start()]))
        if color:
            out.append(match.group(1))
        at = match.end()
    out.append(_CONTROL.sub(shown, text[at:]))
    return "".join(out)


def one_line(text: str) -> str:
    """``text`` as one line of a view: newlines and every other control character but tab
    shown escaped, our marked codes left marked. Views pass each line they build from
    ledger text through this (or :func:`view`), so a field cannot start a forged line."""
    if "\x00" not in text and not _LINE_CONTROL.search(text):
        return text
    out = []
    at = 0
    for match in _own().finditer(text):
        out.append(_LINE_CONTROL.sub(shown, text[at : match.start()]))
        out.append(match.group())
        at = match.end()
    out.append(_LINE_CONTROL.sub(shown, text[at:]))
    return "".join(out)


class View(str):
    """Text made safe line by line (by :func:`view`): :func:`echo` prints its newlines as
    newlines. Any other text is printed as one line. (Joining or slicing a View gives a
    plain str again, which prints as one line: a mistake shows, it does not forge.)"""

    __slots__ = ()


def view(lines: Iterable[str]) -> View:
    """Lines of a view joined, each made :func:`one_line`, with a final newline."""
    return View("".join(one_line(line) + "\n" for line in lines))


def views(parts: Iterable[View], separator: str = "") -> View:
    """Views joined (with ``separator``: a View as it is, other text made one line) into
    one View."""
    joint = separator if isinstance(separator, View) else one_line(separator)
    return View(joint.join(parts))


def csv_view(text: str) -> View:
    """CSV shown on a terminal: each cell made :func:`one_line` (a newline inside a
    quoted cell would start a forged row), rows ended by newlines."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in csv.reader(io.StringIO(text, newline="")):
        writer.writerow([one_line(cell) for cell in row])
    return View(out.getvalue())


def without_own(text: str) -> str:
    """``text`` with our marked codes removed and nothing else changed (data written
    exactly into a file or pipe)."""
    return _own().sub("", text) if "\x00" in text else text


def isatty(stream: TextIO | None) -> bool:
    """Whether ``stream`` is a terminal (False for a closed or odd stream)."""
    try:
        return stream is not None and stream.isatty()
    except Exception:  # (a closed or odd stream: not a terminal)
        return False


def echo(text: str = "", *, err: bool = False, nl: bool = True, data: bool = False) -> None:
    """Print ``text`` on stdout (or ``err``: stderr), flushed: the one output path.

    ``text`` is one line — its newlines are shown as ``\\n`` — unless it is a
    :class:`View` (made by :func:`view`, line by line). Control characters are escaped and
    our own codes kept only on a terminal (off one they are dropped, as ``click.echo``
    drops colour codes). ``data``: a data format (CSV, JSON, DOT …), printed as it is
    when the stream is not a terminal and with control characters escaped, its lines
    kept, on one."""
    stream = sys.stderr if err else sys.stdout
    if stream is None:
        return
    if not data and not isinstance(text, View):
        text = one_line(text)
    tty = isatty(stream)
    text = without_own(text) if data and not tty else for_terminal(text, color=tty)
    stream.write(text + "\n" if nl else text)
    stream.flush()


def echo_data(data: bytes) -> None:
    """Print a data format already encoded as ASCII (``find --json``: JSON escapes every
    other character) as :func:`echo` with ``data`` prints its text: the bytes as they are
    when stdout is not a terminal, escaped on one."""
    stream = sys.stdout
    if stream is None:
        return
    buffer = getattr(stream, "buffer", None)
    if buffer is None or isatty(stream) or not data.isascii() or b"\x00" in data:
        echo(data.decode("utf-8", "surrogateescape"), nl=False, data=True)
        return
    stream.flush()
    buffer.write(data)
    buffer.flush()


def echo_bytes(data: bytes, *, raw: bool = False) -> None:
    """Write bytes kept in the ledger (a log) on stdout: exactly when stdout is not a
    terminal or ``raw`` is asked for; on a terminal, decoded as UTF-8 (invalid bytes as
    ``\\xNN``) with control characters escaped, CRLF line ends kept as line ends."""
    stream = sys.stdout
    if raw or not isatty(stream):
        stream.flush()
        stream.buffer.write(data)
        stream.buffer.flush()
        return
    text = data.decode("utf-8", "backslashreplace").replace("\r\n", "\n")
    stream.write(for_terminal(text, color=False))
    stream.flush()
