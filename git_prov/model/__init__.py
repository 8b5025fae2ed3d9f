"""Pure data of git-prov: records, manifests, ids and their canonical encodings.

Nothing in this package touches git, the file system or the terminal.
"""
