"""git prov rewrite commands (registered on the main group)."""

from __future__ import annotations
