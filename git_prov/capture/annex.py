"""git-annex: name annexed files by the key git-annex already gave them, without reading them.

A file added with ``git annex add`` (a *locked* file) is a symbolic link into git-annex's
object store::

    data.tgz -> .git/annex/objects/5k/jW/SHA256E-s5000--5213…f9.tgz/SHA256E-s5000--5213…f9.tgz

The last path component is the file's **key**: ``BACKEND[-sSIZE][-mMTIME][-SCHUNKSIZE]
[-CCHUNK]--NAME`` (https://git-annex.branchable.com/internals/key_format/). For the hashing
backends NAME is the digest of the content (plus the file's extension for the ``…E``
backends), and git-annex verified it when it ingested the object, which it keeps
read-only. So a link whose target exists, lies in an ``annex/objects/…/KEY/KEY`` slot and
whose size matches the key's ``-s`` field is recorded as

* ``sha256:<hex>`` (``sha512:``, ``sha384:``, ``sha224:``, ``sha1:``, ``md5:``) for the
  SHA-2, SHA-1 and MD5 backends, with and without ``E`` — the same value ``sha256sum``
  gives, so it compares with hashes git-prov read itself;
* ``annex:<key>`` for every other backend (``WORM``, ``URL``, ``SHA3_256E``,
  ``BLAKE2B256E``, …), whose key names the object without being a plain digest of it.

Unlocked files (``git annex unlock``, ``annex.addunlocked``) are ordinary files whose
content git-annex does not vouch for cheaply; they are hashed like any other file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

# Hex digits of each digest backend's name; the "E" variants append an extension.
_DIGEST_BACKENDS = {
    "SHA256": ("sha256", 64),
    "SHA512": ("sha512", 128),
    "SHA384": ("sha384", 96),
    "SHA224": ("sha224", 56),
    "SHA1": ("sha1", 40),
    "MD5": ("md5", 32),
}
_KEY = re.compile(r"(?P<backend>[A-Z0-9_]+)(?P<fields>(?:-[a-zA-Z][0-9]+)*)--(?P<name>.*)")
_HEX = re.compile(r"[0-9a-f]+")
MAX_KEY_LENGTH = 4096  # longer link targets are not git-annex keys


class StatFile(Protocol):
    """A file found while building a data manifest (see ``capture.data``)."""

    @property
    def rel(self) -> str: ...

    @property
    def stat(self) -> os.stat_result: ...

    @property
    def link(self) -> str | None: ...


@dataclass(frozen=True)
class AnnexKey:
    """A parsed git-annex key."""

    key: str
    backend: str
    size: int | None
    name: str

    @property
    def hash(self) -> str:
        """``<algorithm>:<hex>`` for digest backends, else ``annex:<key>``."""
        base = self.backend.removesuffix("E")
        known = _DIGEST_BACKENDS.get(base)
        if known is not None:
            algorithm, digits = known
            digest = self.name[:digits]
            rest = self.name[digits:]
            extension_ok = rest == "" if base == self.backend else rest == "" or rest[0] == "."
            if len(digest) == digits and _HEX.fullmatch(digest) and extension_ok:
                return f"{algorithm}:{digest}"
        return f"annex:{self.key}"


def parse_key(key: str) -> AnnexKey | None:
    """Parse a git-annex key (``SHA256E-s12--f6bf….bin``); None when ``key`` is not one."""
    if len(key) > MAX_KEY_LENGTH or "/" in key:
        return None
    match = _KEY.fullmatch(key)
    if match is None or not match.group("name"):
        return None
    size: int | None = None
    for field in match.group("fields").split("-")[1:]:
        if field[0] == "s":
            size = int(field[1:])
    return AnnexKey(key, match.group("backend"), size, match.group("name"))


def key_of_link(target: str) -> AnnexKey | None:
    """The key a locked annexed file's link target names, or None when the target is not
    an ``…/annex/objects/<hash dirs>/KEY/KEY`` path."""
    parts = target.replace(os.sep, "/").split("/")
    if len(parts) < 4 or parts[-1] != parts[-2]:
        return None
    try:
        objects = len(parts) - 1 - parts[::-1].index("objects")
    except ValueError:
        return None
    if objects < 1 or parts[objects - 1] != "annex" or objects >= len(parts) - 2:
        return None
    return parse_key(parts[-1])


def annexed_hashes(files: Iterable[StatFile]) -> dict[str, str]:
    """``rel → hash`` for the files that are present, locked git-annex files.

    Only the link text and the stat data already taken are used: nothing is read. A key
    whose recorded size differs from the object's is not trusted (the file is then hashed).
    """
    found: dict[str, str] = {}
    for f in files:
        if f.link is None or "annex" not in f.link:
            continue
        key = key_of_link(f.link)
        if key is None or (key.size is not None and key.size != f.stat.st_size):
            continue
        found[f.rel] = key.hash
    return found
