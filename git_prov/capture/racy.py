"""git's racy-file rule, the one threshold every stat-data cache of git-prov uses (kept in
its own module: the data memo needs it without the hashing machinery)."""

# A file modified this recently may change again without its mtime changing (timestamp
# granularity is up to 2 s on some file systems): hash it, but do not cache the result.
RACY_NS = 2_000_000_000
