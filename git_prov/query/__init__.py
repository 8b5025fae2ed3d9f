"""Questions about recorded runs, answered as data (no printing here).

* :mod:`git_prov.query.index` — the local SQLite cache of the ledger every query reads
  (``<git common dir>/prov/index.sqlite``), kept fresh from ``refs/notes/prov``;
* :mod:`git_prov.query.find` — ``git prov find``: filter and sort runs;
* :mod:`git_prov.query.compare` — ``git prov diff``: what changed between two runs;
* :mod:`git_prov.query.drift` — ``git prov check``: what changed since a run;
* :mod:`git_prov.query.lineage` — ``git prov lineage``: which runs made a file, from what;
* :mod:`git_prov.query.envtags` — names for environment manifests, shared through sync.

Modules are imported on demand: ``import git_prov.query`` costs nothing.
"""
