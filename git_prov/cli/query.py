"""git prov query commands (registered on the main group)."""

from __future__ import annotations
