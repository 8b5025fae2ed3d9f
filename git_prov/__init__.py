"""git-prov: reproducible experiment provenance inside git.

Every run is tied to the exact code (HEAD and a snapshot of a dirty tree), data (a
manifest of hashed inputs and outputs) and environment it used, stored as git notes and
objects that travel with push and fetch.
"""

__version__ = "0.1.0"
