"""How close is git-prov to the floor — what git and Python themselves take (issue 18)?

Each row runs the git-prov command and its reference alternately (interleaved, so a shared
machine's load hits both alike) and prints medians of wall-clock time, with CPU seconds
(user + system of the process) and peak memory beside them:

* untracked trap — ``record -i big.bin`` with ``--files`` small untracked, undeclared,
  not-ignored files in the tree (unchanged since the last record), next to ``git status``;
  beside it, the same record in a tree without them, and the floor: what git takes to
  list every untracked file (``git status -uall``, also with git's untracked cache) and
  to lstat each (``git diff-files`` on the snapshot's kept index), which plain
  ``git status`` never does (it does not look inside an untracked directory);
* re-record — ``record -i data`` of ``--files`` unchanged 4 KiB files, next to
  ``git status`` (data/ is ignored: git never looks inside it); beside it, the floor:
  ``git status`` with the same files tracked (git's walk and an lstat of each);
* first record — the same with every cache of the files removed (stat cache, data memo,
  manifest ids), next to hashing the same files with ``hashlib`` on one thread (in this
  process: no start-up);
* record, small repo — the whole process, next to ``python -c "import pygit2"``;
* log -n 20 — at ``--log-runs`` runs, next to ``git log --notes=prov``;
* find --json — every run at ``--find-runs`` runs, next to ``git log --notes=prov``.

"Extra" rows subtract a ``git prov record`` with no inputs in a clean tree, measured in
the same run, so Python's start-up is not counted twice.

Trap and re-record, 2026-12-03 session 7, ``--only trap,rerecord --repeat 5``, load 10-16
on 2 cores (eight sessions at work: wall times are several times an idle machine's and
swing run to run; CPU is steadier). "Before" is main at 970f775 (PYTHONPATH), run the same
way minutes apart; two "after" runs:

| work | before ms (CPU) | after ms (CPU) | after, 2nd run |
|---|--:|--:|--:|
| re-record -i 20k unchanged: extra | 1124 (359) | 429 (118) | 439 (131) |
| … floor: git status, the 20k files tracked | 192 (65) | 235 (63) | 199 (69) |
| record, 20k untracked unchanged: extra | 360 (91) | 291 (96) | 372 (124) |
| … floor: git status -uall | 150 (40) | 174 (41) | 156 (41) |
| … floor: git diff-files on the kept index | 200 (64) | 241 (58) | 231 (69) |
| … floor: both side by side (as the record now runs them) | | | 350 (106) |
| first record 20k × 4 KiB: extra (× hashlib) | 5464 (1753), 2.1× | 5947 (1730), 1.9× | |

Re-record is 1.9× its floor by CPU (was 5.5×): its fingerprint is now one GNU
``find -printf`` of the files' stat data (capture/data_memo.py), no walk in Python. Syscalls
(``strace -f -c``, whole process): a clean record makes 1,375 ``newfstatat``; the re-record
21,848 (+20,473: one per file and directory, all in find), ``git status`` of the 20k files
tracked 20,238. The same lstats, so what is left is find formatting seven fields per file
(``find -printf '%s'`` 76 ms CPU, the full format 106, git status 65, same run) and ~10 ms
of Python (the process, the memo, DVC's check). An exact answer cannot lstat less: only the
ctime tells a same-size edit with its mtime put back, and an lstat costs ~2.5 µs of kernel
time here (git status with the files tracked: 50 of its 55 ms are system time).

The trap record is at its floor by CPU: ``git status -uall`` lists the untracked files
without an lstat of any (401 ``newfstatat``, 208 ``getdents64``: d_type is enough), and
only ``git diff-files`` on the kept index lstats them (20,163); the record makes 21,931
(those two plus Python's 1,375). The two passes are disjoint work, so their sum is the CPU
floor (~100 ms); the record now starts diff-files before status and they run side by side
(wall: the longer of the two on an idle machine). git's untracked cache would cut the
listing (41 → 26 ms) but is not forced on without git's own directory-mtime probe.

The untracked trap, 2026-12-03 (2 CPUs shared, load 14-18; medians of 7; before = main at
aab9088, the run just before, same load):

| work | before ms (CPU) | after ms (CPU) | × git status |
|---|--:|--:|--:|
| record, 20k untracked unchanged: extra | 1603 (472) | 614 (142) | 101 → 31 |
| floor: git status -uall | 166 (43) | 184 (40) | 9.3 |
| floor: git status -uall, untracked cache | 105 (28) | 108 (26) | 5.5 |
| floor: git diff-files (lstat each) | 259 (62) | 337 (64) | 17 |
| git status (the reference) | 16 (3) | 20 (3) | 1 |

The record now costs the two floor rows (a listing of every untracked file and an lstat
of each: 26× git status here) and ~40 ms of CPU beside them; ≤ 3× git status cannot be
had without a file-system monitor, since plain ``git status`` never looks inside an
untracked directory, and only an lstat tells an in-place edit from no change.

Idle, end of session 9 (load 1.2-1.7; main at 809b2b6; ``--only startup,log --repeat 9``
and ``--only first,find,rerecord,trap --repeat 3``): record, small repo 215 ms vs import
pygit2 161 (1.33x wall, 1.4x CPU; again with --repeat 15: 1.33x / 1.3x); log -n 20 at 10k
140 vs git log 41 (3.4x / 3.5x); first record 20k x 4 KiB extra 1313 vs hashlib 696
(1.9x); find --json at 100k 2650 vs 355 (7.5x), 58 MiB; re-record 20k unchanged extra 54
(88 CPU) vs git status 5, its floor (git status, the files tracked) 36 (58): 10.4x against
a floor of 7.0x; untracked trap extra 87 (122) vs git status 6, its floor (status -uall and
diff-files side by side) 63 (103): 13.9x against a floor of 10.1x.

    python bench/bench_floor.py [--files 20000] [--repeat 5] [--log-runs 10000]
                                [--find-runs 100000] [--only trap,rerecord,...]

Start-up, session 9 (lane ``startup``, 75c2e70..). By instructions (callgrind, bytecode in a
private cache, second run; "before" is main at dd48ac8, "after" this lane's last commit,
each by PYTHONPATH over the same repositories, run alternately):

| process | before | after |
|---|--:|--:|
| record --command true, small repo | 579.6 M (1.41× import pygit2) | 530.3 M (1.29×) |
| … installed (editable, no PYTHONPATH) | | 527.0 M (1.29×) |
| log -n 20 at 10k runs (the Python process) | 315.0 M | 278.4 M (−11.6%) |
| ``python -c 'import pygit2'`` / ``git log --notes=prov`` | 410.0 M / 151.5 M | |

What went, step by step: the cycle collector paused over start-up (imports and parsing,
until the command's own work) and what start-up made frozen (record −26.9 M, log
−24.7 M: it walked ~100k objects again and again as they came); what the command made
frozen as it ends, so the interpreter's last collection does not walk it (−14 M, −5 M);
entry's two NamedTuples plain classes (−2.3 M); ``-n 20`` parsed without click's
did-you-mean (difflib, −3.0 M); dataclasses made on first use of their field list (−4.2 M,
−2.2 M). Beside the instructions: log starts ``git rev-parse`` before its query modules
load (21 interleaved at load 4.4: 289 → 267 ms wall, CPU the same), and lets ``git log``
write only a page ahead of what it reads (it walked and formatted all 1,000 commits into a
full pipe, 42.0 M instructions, against 2.5 M for 40; 21 interleaved at load 3.5: 161 → 155
ms wall, 131 → 125 ms CPU).

This bench, ``--only startup,log --repeat 9``, alternately before and after, twice each,
load 3.2-3.3 (other lanes at work; × ref wall / CPU):

| work | before | after | before | after |
|---|--:|--:|--:|--:|
| record / import pygit2 | 1.18 / 1.5 | 1.34 / 1.3 | 1.63 / 1.6 | 1.48 / 1.3 |
| log -n 20 / git log --notes=prov | 4.5 / 4.5 | 3.7 / 3.6 | 4.4 / 4.5 | 3.2 / 3.3 |

Again at load 2.2 (main at 338ddea, the other lanes' work in it), once each, then the
installed package without PYTHONPATH: record 1.67 / 1.6 before, 1.38 / 1.3 after, 1.22 / 1.3
installed; log 3.8 / 4.1 before, 3.4 / 3.7 after, 3.3 / 3.5 installed (ms: log 164 → 151 and
179 installed, git log 43-54; record 286 → 249 and 253, import pygit2 171-207). By CPU log
is still near 3.5×: its Python process runs 1.8× git log's instructions (277 M against
151.5 M) but takes ~3.5× its CPU, the rest being the interpreter's lower rate per
instruction and ~3,600 page faults (21 MB touched) against git's ~550, which this VM
prices high.

Left (log, by callgrind): click and what it imports, ~100 M over a bare Python (inspect,
ast, dis, tokenize, datetime, uuid with platform's regexes, gettext with locale);
unmarshalling ~2 MB of bytecode, 40 M; building classes, 52 M, mostly click's, typing's
and the standard library's; subprocess (8.8 M) and json (4.8 M), both needed. The
editable install's finder is *not* a cost of its own (last session's note said 60 M): with
``python -S`` and the same paths added, log is 279.1 M against 280.5 M and ``import
pygit2`` 406.4 M against 409.9 M; site imports pathlib and the like, which git-prov
imports anyway.

Start-up, session 8 (lane ``startup``, be22865 + 6b503b8). By instructions (callgrind of the
Python process, bytecode compiled into a private cache, second run of each; each version
by PYTHONPATH over the same repositories, so the three columns differ only in the code):

| process | session start (7fe1ee4) | main before (ba3f44e) | now (6b503b8) |
|---|--:|--:|--:|
| record --command true, small repo | 606.0 M | 606.8 M | 583.0 M (−3.9%) |
| log -n 20 at 10k runs (git not counted) | 333.5 M | 337.3 M | 315.4 M (−6.5%) |

``python -c 'import pygit2'`` 411.8 M: record is 1.41× it (578.8 M without PYTHONPATH, the
clean repository's ledger grown by the benches; 565.8 M / 1.38× in a fresher copy at 15:08).
What went: the three control-character patterns (classes beyond Latin-1: ~3 M each to
compile) are compiled only for text ``str.isprintable`` cannot clear (model/controls.Controls;
a record's one line never needs them), the own-code patterns on first use, and nine
dataclasses that still generated code at import (untracked's Policy/Untracked/_State;
GitRepo, LedgerScan, IndexStats, _Tips, RunIndex, located's _Rows/_Band) written out.

This bench, ``--only startup,log --repeat 9``, load 2.2-2.5, alternately before (ba3f44e)
and now, twice each (× ref wall / CPU):

| work | before | now | before | now |
|---|--:|--:|--:|--:|
| record / import pygit2 | 1.56 / 1.5 | 1.49 / 1.5 | 1.54 / 1.5 | 1.54 / 1.5 |
| log -n 20 / git log --notes=prov | 4.8 / 4.5 | 4.0 / 4.1 | 4.6 / 4.5 | 4.7 / 4.6 |

Wall swings by more than the change at this load; the instruction counts are the measure.
Neither target is met beyond doubt. What is left (callgrind, imports stacked one by one):
``python -c pass`` in this venv is 88 M, 60 M of it site's editable-install finder (pathlib,
urllib, ipaddress; a wheel install has none); click 47 M over pygit2 (100 M over a bare
Python: inspect, ast, dis, tokenize, datetime, uuid, platform); git_prov.cli 14 M (was 24: entry's
two NamedTuples, the group's options); for record ~20 dataclass field lists (~0.5 M each) and
git_prov's modules; for log json, sqlite3, the index and located modules (~45 M).

Start-up rows, 2026-12-03 (session 7), ``--only startup,log --repeat 11``, run alternately
"before" (main at 970f775, by PYTHONPATH) and "now" (5b29a2b), twice each at load 6.2 → 5.2
and twice at load 2.8 → 2.3, on 2 cores (other sessions at work: wall is noisy; the ratio
to the reference measured in the same run is what counts):

| work | load | before × ref, wall (CPU) | now × ref, wall (CPU) | target |
|---|--:|--:|--:|--:|
| record, small repo / import pygit2 | 6 | 1.84, 1.73 (1.8, 1.7) | 1.48, 1.58 (1.6, 1.6) | ≤ 1.5 |
| | 2.5 | 1.82, 1.71 (1.8, 1.7) | 1.71, 1.69 (1.6, 1.7) | |
| log -n 20, 10k runs / git log --notes=prov | 6 | 5.1, 5.1 (5.0, 5.4) | 3.7, 4.3 (4.8, 4.8) | ≤ 4 |
| | 2.5 | 5.2, 4.8 (5.5, 5.0) | 5.0, 4.0 (5.0, 4.2) | |

By instructions (valgrind callgrind of the Python process, load-independent; a record in a
fresh copy of one small repository each time):

| process | before | now |
|---|--:|--:|
| ``python -c 'import pygit2'`` | 410.1 M | 410.1 M |
| ``python -c 'import pygit2, click'`` | 456.7 M | 456.7 M |
| record --command true (whole) | 703.6 M (1.72×) | 612.8 M (1.49×) |
| log -n 20 at 10k runs (the git processes not counted) | 370.9 M | 339.2 M |

What moved it: every command is loaded lazily (cli/__init__.py split; record no longer
defines log, show, init, demo: 7 M), and the 19 dataclasses a record or log loads have
their methods written out (model/frozen.py) instead of ``@dataclass(frozen=True)``
compiling ~50,000 characters of generated source in every process (~90 M). What is left
of record beyond ``import pygit2``: click (47 M), git-prov's own modules (~110 M, no
generated code left but LedgerScan's and GitRepo's), the record itself (~35 M) and one
``git status``; its CPU (1.6×) also counts the page faults of the ~150 modules and the
shared libraries click and the standard library load (system time 30-50 ms against
10-20 ms). log spends its CPU in four git processes (find the repository, ``git log``,
``cat-file``, the orphan hint's ``rev-parse``), click, and 100 records through the exact
parser; ≤ 4× of ``git log`` by CPU would need fewer git processes.

log -n 20 at 10k runs, 2026-12-03 later (session 7, lane ``log``; f25dacb..010ac72). Now
three git processes: the orphan hint's alive tips (``rev-parse --branches --tags --remotes
HEAD``) come from the rev-parse that finds the repository (asked apart only when that one
fails, e.g. an unborn HEAD), ``git log`` is started before the index is opened, and
RepoPaths, CommitRuns and the hint's Unfetched have their methods written out. Output
(stdout and stderr) byte-identical. "Before" is main at 6f3e7f0 (PYTHONPATH), interleaved:

| measure | load | before | now |
|---|--:|--:|--:|
| callgrind, the Python process (2 runs each) | any | 342.7 M, 342.9 M | 330.3 M, 330.1 M |
| this bench (--repeat 9, twice): × ref (CPU) | 9.5 | 5.9 (4.6), 4.4 (5.1) | 5.7 (5.2), 5.2 (4.3) |
| 25 interleaved, rusage of children: × ref (CPU) | 8.7 | 3.51 (3.91) | 3.35 (3.82) |
| the same, again | 7.0 | 2.51 (3.68) | 2.42 (3.46) |

(ms in the last two rows: before 354 (172), 228 (157); now 338 (168), 220 (148);
``git log --notes=prov`` 101 (44), 91 (43).) At load 7-10 this bench's ratio swings by
more than the change; the instruction count and the 25-run medians are the steadier
measures: −3.7% instructions, −3 to −6% CPU, one process fewer.

Re-record, 2026-12-03 session 8 (lane ``rerecord``, d704eb9..a999cac): an unchanged re-record
of plain files no longer runs ``find``. The memo keeps a private index of the files in
git's format (``<prov>/data-index/``: the walk's stat data, placeholder object ids) and the
directories' stat data; a re-record lstats the directories in Python (an added, removed or
renamed file changes its directory) and runs ``git diff-files --quiet`` on that index,
started before the dirty-tree snapshot's ``git status`` and running beside it, with
trustctime/checkStat/fsmonitor/ignoreStat forced (tests/test_data_memo_index.py). Only data
unchanged past the racy window (mtime and ctime, files and directories) is indexed.
By instructions (valgrind callgrind; the Python process, and its one child apart, since
callgrind does not follow Python's vfork), 20k × 4 KiB, repeatable under load:

| part | before (7fe1ee4) | now (a999cac) |
|---|--:|--:|
| the record's Python process (clean record: 590.0 M) | 672.7 M (+82.7) | 609.8 M (+19.8) |
| the check's child | ``find -printf`` 221.1 M | ``git diff-files`` 18.7 M |
| extra instructions in all | 303.8 M | 38.5 M |
| floor: ``git status`` with the 20k files tracked | 27.8 M | 27.8 M |

Both make the same ~20k ``newfstatat`` (one per file; git status with the files tracked
too), ~2.5 µs of kernel time each here, which the instruction counts leave out. By wall and
CPU (``/tmp`` script interleaving clean record, before by PYTHONPATH, now, ``git status``
and the floor; 11 rounds, load 7.5 → 9.1, medians): extra 292 ms (128 CPU) before,
210 (77) now; ``find -printf`` alone 360 (110), ``git diff-files`` alone 173 (60), the
floor 191 (60), ``git status`` 12 (4). This bench right after (``--only rerecord --repeat
9``, load 9.1 → 9.0): extra 264 ms (97 CPU), floor 185 (61), ``git status`` 18 (5). So the
re-record is at the floor's syscalls and 1.4× its instructions; ≤ 5× plain ``git status``
stays out of reach for the reason below (an exact check must lstat every file, which
plain ``git status`` never does for ignored data). Left in Python (~20 M): click's
``NoSuchOption`` for every short option (``-i``: imports difflib, ~2 M), the memo, the
fork of git.

Re-record and first record, 2026-12-03, ``--only rerecord,first --repeat 7``, load
14.7 → 13.3 on 2 cores (others at work: wall times are several times an idle machine's;
CPU is steadier). "Start" is main at 73943c0, measured the same way at load 13 → 8:

| work | start ms (CPU) | now ms (CPU) | reference ms (CPU) | × ref, wall (CPU) |
|---|--:|--:|---|--:|
| re-record -i 20k unchanged: extra | 2773 (1054) | 1231 (293) | git status 7 (3) | 177 (107) |
| … floor: git status, 20k tracked | | 235 (62) | git status 7 (3) | 34 (23) |
| re-record, against that floor | | 1231 (293) | the floor 235 (62) | 5.2 (4.7) |
| first record 20k × 4 KiB: extra | 2528 (1883) | 5423 (1491) | hashlib 2991 (813) | 1.8 (1.8) |

Targets: re-record ≤ 5× git status (not met: see below), first record ≤ 2× (met).

(The start's first-record row kept the manifest-ids memo between runs; now every cache of
the files is removed.) An unchanged re-record now names the manifest stored last time
(capture/data_memo.py: a fingerprint of the walk's stat data) without the stat cache, git's
view of the files, building or serialising; what is left is the walk and an lstat of each
file, which plain ``git status`` never does (data/ is ignored), and which costs git itself
23× ``git status`` here. A first record reads small files on one thread (no pool), writes
the manifest's common entries in one pass and stores the stat cache's rows in key order.

First record, 2026-12-03 session 8 (lane ``firstrec``), ``--only first --repeat 5``, load 7-10
on 2 cores (others at work: wall is several times an idle machine's). "Before" is main at
5cbd2b5 (PYTHONPATH), "after" e971afe, run one after the other; beside them an A/B of the
two interleaved in one script (7 rounds, load 7 -> 9):

| first record 20k × 4 KiB: extra | ms (CPU) | hashlib ms (CPU) | × hashlib, wall (CPU) |
|---|--:|--:|--:|
| before (bench) | 3316 (1564) | 1101 (590) | 3.0 (2.7) |
| after (bench, two runs) | 3368 (1176) | 1819 (659) | 1.9 (1.8) |
| | 2229 (1273) | 1101 (689) | 2.0 (1.8) |
| before, A/B interleaved | 7012 (1767) | 3284 (783) | 2.14 (2.26) |
| after, A/B interleaved | 6479 (1352) | 3284 (783) | 1.97 (1.73) |

What went (cProfile, then the collector's own callbacks): Python's cycle collector ran 351
young and 32 middle collections and walked the whole heap twice (~155 ms of ~1.7 s CPU at
that load): record and run now pause it while a record is captured and written. Each small
file was read twice (the second read to see its end): now once when fstat after the read
agrees with the size read. describe_data's common case (every file hashed, no git, annex or
DVC names, nothing kept) builds its jobs and entries without five look-ups per file, DVC's
metadata is looked for per directory, not per file, DataEntry's fields go straight into its
dict, and the files index (data memo) packs each entry in one call. Output bytes unchanged
(manifests cold, warm, uncached and with git ids, and the stat cache's rows, compared with
the code before on a tree of symlinks, an LFS pointer, tracked and modified files, a hard
link, an executable and a non-ASCII name). What is left beyond hashing (hashing itself
costs less than the reference, which allocates a 256 KiB buffer per file): the walk's lstat
of each file and ``find``'s beside it, the stat cache's 20k-row insert (~0.1 s of CPU,
mostly SQLite's), the files index and the manifest's serialisation and zlib.

find --json of every run at 100k runs, 2026-12-03, ``--only find --repeat 3`` (2 CPUs shared
with seven other sessions). "Before" is main at 7afe2e5 (its bench, load 10.9 → 10.8);
"now" at 28be98b (load 16.1 → 8.2). The measured runs of the bench before were already
warm: ``find -n 1`` builds the index and one ``find --json`` runs before the measured ones.
Now the bench prints the three states apart: an index up to date (what repeated queries
see), the first run after a build (it checks every line once, see below), and cold (no
index: the run builds it too):

| work | before ms (CPU) | now ms (CPU) | × git log, wall / CPU | peak RSS |
|---|--:|--:|--:|--:|
| index up to date | 14977 (7244) | 8032 (2795) | 23.4 / 26.8 → 9.3 / 9.4 | 101 → 84 MiB |
| … the first run after a build | (as above) | 20030 (8869) | 52.2 / 30.8 | 86 MiB |
| … cold (no index) | | 33644 (12476) | 35.9 / 43.4 | 122 MiB |

(git log --notes=prov, the reference, in the same runs: 640 ms (270 CPU) before; 864 (299),
383 (288) and 937 (288) now.)

Target ≤ 8×, ≤ 100 MiB: memory met warm; time not (9.4× by CPU). What changed: a line as
git-prov writes it is printed from its text with find's own members spliced in, once the
index knows (``notes.splices``, worked out by the first run that reads a note blob: it
decodes every line as before and compares — hence that run's extra ~20%); the matches are
read as index row ids (no 100k FoundRun tuples, no run id strings); the spool is a file per
band of output positions read back whole (13 reads, not 100k preads). What is left, by
cProfile of a warm run: waiting for ``git cat-file`` (its CPU runs beside ours), the
per-line loop and the splice (~0.7 s at load 8: string building and two ``str.replace`` over
60 MB), the index rows in note order (0.6 s), the spool (0.6 s), and ~0.3 s of start-up.
The index build does no more work than before (``find -n 1`` with no index, 3 runs each,
interleaved, load 5.6 → 5.2: 5.39 s wall, 4.14 s CPU before; 5.17 s, 4.32 s now: noise).

Then (findjson2, 883ddd6): a line with a kept splice is printed from the note's bytes —
find's members written around slices of its JSON, the separators spaced by two
``bytes.replace`` per note, the spool holding bytes and the command writing them to stdout's
buffer (no decode or encode of 60 MB). ``--only find --repeat 3``, "before" = a61a903 by
PYTHONPATH, run right after "now" (load 9.0 → 8.5 and 8.5 → 9.0):

| work | before ms (CPU) | now ms (CPU) | × git log, wall / CPU (before → now) | peak RSS |
|---|--:|--:|--:|--:|
| index up to date | 5350 (2576) | 7724 (2698) | 7.9 / 9.5 → 4.9 / 8.8 | 83 MiB |
| … the first run after a build | 24298 (9003) | 18504 (8344) | 27.4 / 26.9 → 18.2 / 24.7 | 86 MiB |
| … cold (no index) | 28536 (13568) | 29791 (12852) | 41.0 / 46.2 → 34.3 / 43.5 | 123 MiB |

At load 9 the two runs' CPU times are within noise of each other. Run by hand, alternately,
four times each at load 4.2 (index up to date; medians): before 2.33 s wall, 2.2 s CPU; now
2.07 s, 1.95 s; git log 0.30 s, 0.235 s: 7.8 / 9.4× → 6.9 / 8.3×, 85 MiB. By cProfile the
reading, splicing and spooling fell from 9.7 to 7.0 s (profiled, cat-file's wait included;
the splice, replace and spool from ~4.7 to ~2.8 s); what is left: waiting for
``git cat-file`` (its 0.3 s of CPU runs beside ours; a 1 MiB pipe, tried, changed nothing
measurable), the per-line slicing (~1.0 s profiled: five ``bytes.find`` and one format a
line), ``bytes.replace`` (0.5 s: 60 MB twice), the index rows in note order (0.75 s), the
spool (0.7 s: 100k buffered writes; the output order is not the notes' order, so it cannot
be skipped) and ~0.3 s of start-up. CPU ≤ 8× is not met (8.3-8.8×).

Session 8 (findjson: bf2b8c3, 5cbd2b5, 695cf5e). The spool takes a few thousand texts at a
time, sorts them by position and appends each band's share in one write (was one write per
text); a band is read back whole and written to stdout in one piece, its spliced lines spaced
together (two ``bytes.replace`` over the band, not per note, and no split again); the rows
and their notes are read by columns (``fetchmany``, ``map``, ``compress``) from the
``(note, lineno)`` index alone — the old query read ``live`` from the table, whose pages the
64 MiB mmap then counted as this process's memory (+45 MiB); a note's lines asked for, all
with a kept splice, are made in one call; ``git cat-file``'s output is read up to 1 MiB at a
time (18k reads → 8.5k). Output byte-identical (also ``--csv``). By hand, on a copy of
/tmp/million/l100k, GNU time, 5 rounds interleaved, medians, load 7.1 → 7.6; "before" =
074359d by PYTHONPATH:

| work | wall s | CPU s | × git log, wall / CPU | peak RSS |
|---|--:|--:|--:|--:|
| git log --notes=prov | 0.76 | 0.33 | | 21 MiB |
| find --json, index up to date, before | 6.97 | 2.93 | 9.2 / 8.9 | 85 MiB |
| find --json, index up to date, now | 4.81 | 2.17 | **6.3 / 6.6** | **59 MiB** |
| find --csv, before / now (2 rounds) | 25.9 / 23.8 | 11.2 / 9.7 | | 88 / 56 MiB |

``--only find --repeat 3`` (this bench's ledger, 695cf5e's code, load 12.0 → 8.1): index up
to date 10.7 s wall, 2.16 s CPU against git log 1.82 / 0.30: 5.9× / 7.3×, 58 MiB; the first
run after a build 21× / 24× (59 MiB); cold 32× / 36× (101 MiB). What is left (stage timings
in one process, load ~12, CPU s): start-up and imports 0.12, find's SQL 0.05-0.07, rows'
places 0.02-0.04, rows by note 0.2, reading the blobs 0.17 (+ git's own ~0.2), splicing and
spooling 0.55 (the per-line finds and format ~0.25), spacing 0.33 (two 2-byte
``bytes.replace`` over 67 MB: a ``replace`` of a 1-byte pattern takes a third of that, but
``,`` and ``:`` also sit inside strings) and ~0.1 writing out. git writes its output to the
pipe 4 KiB at a time (~15k writes: glibc's buffer for a pipe), which costs sys time on
this VM that git log does not pay. ``--csv`` decodes every record (json.loads and the csv
writer): its time is that, not the reading.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

PY = sys.executable
PROV = [PY, "-m", "git_prov", "--no-pager"]
ROWS = ("trap", "rerecord", "first", "startup", "log", "find")

# Commands run as an installed git-prov runs: from compiled bytecode kept out of the tree.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV.setdefault("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / "bench-floor-pyc"))
for _key, _value in (("NAME", "bench"), ("EMAIL", "bench@example.com")):
    ENV.setdefault(f"GIT_AUTHOR_{_key}", _value)
    ENV.setdefault(f"GIT_COMMITTER_{_key}", _value)


class Sample:
    """Wall seconds, CPU seconds and peak resident KiB of one run."""

    def __init__(self, wall: float, cpu: float, rss_kib: int) -> None:
        self.wall, self.cpu, self.rss_kib = wall, cpu, rss_kib


# GNU time, when at hand, reports a command's own peak RSS. wait4's ru_maxrss alone is at
# least this process's RSS when it forked (Linux keeps the forked copy's high-water mark
# across exec): once this bench holds a 100k-run ledger's rows (291 MiB), every command
# started after would seem to peak there.
GNU_TIME = Path("/usr/bin/time") if Path("/usr/bin/time").exists() else None


def run(cmd: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> Sample:
    """Run ``cmd`` to its end (stdout discarded); its wall time, CPU time and peak RSS."""
    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile() as peak:
        launch = [str(GNU_TIME), "-f", "%M", "-o", peak.name] if GNU_TIME else []
        began = time.perf_counter()
        proc = subprocess.Popen(
            [*launch, *cmd],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**ENV, **(env or {})},
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed:\n{err.read().decode(errors='replace')}")
        rss = usage.ru_maxrss
        if GNU_TIME:
            text = Path(peak.name).read_text().split()
            rss = int(text[-1]) if text and text[-1].isdigit() else rss
    return Sample(wall, usage.ru_utime + usage.ru_stime, rss)


def side_by_side(*commands: tuple[Sequence[str], Path, dict[str, str] | None]) -> Sample:
    """Run ``commands`` at once (each to its end); the wall time until the last ends, the
    CPU seconds of all."""
    began = time.perf_counter()
    procs = [
        subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, env={**ENV, **(env or {})})
        for cmd, cwd, env in commands
    ]
    cpu, rss = 0.0, 0
    for proc in procs:
        _, _, usage = os.wait4(proc.pid, 0)
        cpu += usage.ru_utime + usage.ru_stime
        rss = max(rss, usage.ru_maxrss)
    return Sample(time.perf_counter() - began, cpu, rss)


def in_process(fn: Callable[[], object]) -> Sample:
    began, cpu = time.perf_counter(), time.process_time()
    fn()
    return Sample(time.perf_counter() - began, time.process_time() - cpu, 0)


def interleaved(actions: dict[str, Callable[[], Sample]], repeat: int) -> dict[str, list[Sample]]:
    """Each action once per round, ``repeat`` rounds."""
    out: dict[str, list[Sample]] = {name: [] for name in actions}
    for _ in range(repeat):
        for name, action in actions.items():
            out[name].append(action())
    return out


def med(samples: list[Sample], what: str = "wall") -> float:
    return float(statistics.median(getattr(s, what) for s in samples))


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, env={**ENV, **(env or {})}
    )


def new_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "code.py").write_text("print(1)\n")
    (path / ".gitignore").write_text("data/\nbig.bin\n")
    git(path, "add", "code.py", ".gitignore")
    git(path, "commit", "-qm", "init")
    return path


def small_files(root: Path, count: int, size: int) -> list[Path]:
    made = []
    for i in range(count):
        sub = root / f"d{i % 100:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"f{i:05d}.bin"
        path.write_bytes(i.to_bytes(4, "little") * (size // 4) if size >= 4 else b"x")
        made.append(path)
    return made


def hash_files(files: list[Path]) -> None:
    for path in files:
        with open(path, "rb") as f:
            hashlib.file_digest(f, "sha256")


Row = tuple[str, float, float, str, float, float, str]  # label, ms, cpu, ref label, ms, cpu, x


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--log-runs", type=int, default=10_000)
    parser.add_argument("--find-runs", type=int, default=100_000)
    parser.add_argument("--only", default=",".join(ROWS), help=",".join(ROWS))
    parser.add_argument("--dir", type=Path, help="Keep the generated repositories here.")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    base = args.dir or Path(tempfile.mkdtemp(prefix="bench-floor-"))
    base.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    rows: list[Row] = []
    notes: list[str] = []

    clean = base / "clean"
    if not clean.exists():
        new_repo(clean)
    clean_record = [*PROV, "record", "--command", "true"]
    run(clean_record, clean)  # caches warm

    def extra(label: str, cmd: list[str], cwd: Path, ref_label: str, ref: Callable[[], Sample],
              before: Callable[[], None] | None = None,
              floors: dict[str, Callable[[], Sample]] | None = None,
              parts: dict[str, Callable[[], Sample]] | None = None) -> None:  # fmt: skip
        def measured() -> Sample:
            if before is not None:
                before()
            return run(cmd, cwd)

        got = interleaved(
            {"clean": lambda: run(clean_record, clean), "it": measured, "ref": ref,
             **(floors or {}), **(parts or {})},
            args.repeat,
        )  # fmt: skip
        wall = med(got["it"]) - med(got["clean"])
        cpu = med(got["it"], "cpu") - med(got["clean"], "cpu")
        r_wall, r_cpu = med(got["ref"]), med(got["ref"], "cpu")
        rows.append((label, wall, cpu, ref_label, r_wall, r_cpu, f"{wall / r_wall:.1f}"))
        notes.append(f"{label}: whole process {med(got['it']) * 1000:.0f} ms")
        for name in parts or {}:  # git-prov doing part of the same work: extra too
            p_wall = med(got[name]) - med(got["clean"])
            p_cpu = med(got[name], "cpu") - med(got["clean"], "cpu")
            rows.append((name, p_wall, p_cpu, ref_label, r_wall, r_cpu, f"{p_wall / r_wall:.1f}"))
        for name in floors or {}:  # what git itself takes for parts of the same work
            f_wall, f_cpu = med(got[name]), med(got[name], "cpu")
            rows.append((name, f_wall, f_cpu, ref_label, r_wall, r_cpu, f"{f_wall / r_wall:.1f}"))

    if only & {"trap"}:
        trap = base / "trap"
        if not trap.exists():
            new_repo(trap)
            (trap / "big.bin").write_bytes(os.urandom(1 << 20) * 64)
            small_files(trap / "untracked", args.files, 40)
        cmd = [*PROV, "record", "-i", "big.bin", "--command", "true"]
        run(cmd, trap)  # the first record: the tree's snapshot and big.bin's hash cached
        # The floor: a snapshot must list every untracked file (git status -uall; with
        # git's untracked cache on a copy of the index, to see what that cache saves) and
        # lstat each (git diff-files on the snapshot's kept index, read-only).
        kept = max(
            (trap / ".git" / "prov").glob("snapshot-untracked-*.index"),
            key=lambda p: p.stat().st_mtime_ns,
        )
        cached = base / "trap-status.index"
        uc = ["-c", "core.untrackedCache=true", "-c", "status.showUntrackedFiles=all"]
        git(trap, "read-tree", "HEAD", env={"GIT_INDEX_FILE": str(cached)})
        run(["git", *uc, "status", "--porcelain"], trap, {"GIT_INDEX_FILE": str(cached)})
        # The same record in a copy of the repository without the untracked files: what
        # `-i big.bin` costs (imports, a stat-cache hit), not the snapshot.
        plain = base / "trap-no-untracked"
        if not plain.exists():
            new_repo(plain)
            os.link(trap / "big.bin", plain / "big.bin")
        run(cmd, plain)
        extra(
            f"record, {args.files // 1000}k untracked unchanged: extra", cmd, trap,
            "git status", lambda: run(["git", "status", "--porcelain"], trap),
            parts={"… the same record, no untracked files: extra": lambda: run(cmd, plain)},
            floors={
                "floor: git status -uall": lambda: run(
                    ["git", "status", "--porcelain", "-uall"], trap),
                "floor: git status -uall, untracked cache": lambda: run(
                    ["git", *uc, "status", "--porcelain"], trap, {"GIT_INDEX_FILE": str(cached)}),
                "floor: git diff-files (lstat each)": lambda: run(
                    ["git", "diff-files"], trap, {"GIT_INDEX_FILE": str(kept)}),
                "floor: both side by side (as the record runs them)": lambda: side_by_side(
                    (["git", "status", "--porcelain", "-uall"], trap, None),
                    (["git", "diff-files"], trap, {"GIT_INDEX_FILE": str(kept)})),
            },
        )  # fmt: skip

    if only & {"rerecord", "first"}:
        data = base / "data-repo"
        if not data.exists():
            new_repo(data)
            small_files(data / "data", args.files, 4096)
        files = sorted((data / "data").rglob("*.bin"))
        cmd = [*PROV, "record", "-i", "data", "--command", "true"]
        run(cmd, data)
        if "rerecord" in only:
            # data/ is ignored: `git status` never looks inside it. Git's own cost of a walk
            # and an lstat of each of the same files is `git status` with them tracked.
            tracked = base / "data-tracked"
            if not tracked.exists():
                new_repo(tracked)
                small_files(tracked / "data", args.files, 4096)
                git(tracked, "add", "-f", "data")
                git(tracked, "commit", "-qm", "data")
                time.sleep(2)  # past git's racy window: the index vouches for every file
                git(tracked, "status")
            extra(
                f"re-record --input {args.files // 1000}k unchanged: extra", cmd, data,
                "git status", lambda: run(["git", "status", "--porcelain"], data),
                floors={
                    f"… git status, the {args.files // 1000}k files tracked (lstat each)": (
                        lambda: run(["git", "status", "--porcelain"], tracked)
                    ),
                },
            )  # fmt: skip
        if "first" in only:

            def forget() -> None:  # every cache of the files: a first record
                prov_dir = data / ".git" / "prov"
                for suffix in ("", "-wal", "-shm"):
                    (prov_dir / f"hash-cache.sqlite{suffix}").unlink(missing_ok=True)
                for memo in ("data-memo", "manifest-ids"):
                    shutil.rmtree(prov_dir / memo, ignore_errors=True)

            extra(
                f"first record {args.files // 1000}k x 4 KiB: extra", cmd, data,
                "hashlib, 1 thread", lambda: in_process(lambda: hash_files(files)), forget,
            )  # fmt: skip

    if "startup" in only:
        run([PY, "-c", "import pygit2"], clean)  # (compiled into ENV's cache, as the record is)
        got = interleaved(
            {
                "it": lambda: run(clean_record, clean),
                "ref": lambda: run([PY, "-c", "import pygit2"], clean),
            },
            args.repeat,
        )
        wall, ref = med(got["it"]), med(got["ref"])
        rows.append((
            "record, small repo (whole)", wall, med(got["it"], "cpu"),
            "python -c 'import pygit2'", ref, med(got["ref"], "cpu"), f"{wall / ref:.2f}",
        ))  # fmt: skip

    if only & {"log", "find"}:
        from ledger_factory import make_ledger

        git_log = ["git", "log", "--notes=prov", "--format=%H%n%N"]
        for name, runs, cmd in (
            ("log", args.log_runs, [*PROV, "log", "-n", "20"]),
            ("find", args.find_runs, [*PROV, "find", "--json"]),
        ):
            if name not in only:
                continue
            repo = base / f"ledger-{runs}"
            if not repo.exists():
                make_ledger(repo, runs=runs, commits=max(1, runs // 10))
            index = repo / ".git" / "prov" / "index.sqlite"
            run([*PROV, "find", "-n", "1"], repo)  # the query index, built
            run(cmd, repo)  # (and the command's own modules compiled into ENV's cache)

            def cold(index: Path = index) -> None:  # no index: the run builds it
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{index}{suffix}").unlink(missing_ok=True)

            def unchecked(index: Path = index) -> None:  # built, lines not checked yet
                import sqlite3

                with sqlite3.connect(index) as db:
                    db.execute("UPDATE notes SET splices = NULL")

            label = f"{' '.join(cmd[4:])} at {runs // 1000}k runs (whole)"
            states: list[tuple[str, Callable[[], None] | None]] = [("", None)]
            if name == "find":  # (each run prints the same; only what it finds kept differs)
                label = f"{' '.join(cmd[4:])} at {runs // 1000}k runs (whole, index up to date)"
                states += [
                    ("… the first after a build (lines not checked yet: it checks them)",
                     unchecked),
                    ("… cold: no index (the run builds it, then checks the lines)", cold),
                ]  # fmt: skip
            for state, before in states:

                def measured(
                    cmd: list[str] = cmd, repo: Path = repo, before: Any = before
                ) -> Sample:
                    if before is not None:
                        before()
                    return run(cmd, repo)

                got = interleaved(
                    {"it": measured, "ref": lambda repo=repo: run(git_log, repo)},  # type: ignore[misc]
                    args.repeat,
                )
                wall, ref = med(got["it"]), med(got["ref"])
                peak = max(s.rss_kib for s in got["it"]) / 1024
                rows.append((
                    state or label, wall, med(got["it"], "cpu"), "git log --notes=prov", ref,
                    med(got["ref"], "cpu"), f"{wall / ref:.1f}",
                ))  # fmt: skip
                notes.append(f"{state or label}: peak RSS {peak:.0f} MiB")
            run(cmd, repo)  # (left as it was found: checked)

    load_after = os.getloadavg()
    print(
        f"\nmedians of {args.repeat}, interleaved; {os.cpu_count()} CPUs; load average "
        f"{load_before[0]:.2f} → {load_after[0]:.2f} (a shared machine)\n"
    )
    print("| work | ms | CPU ms | reference | ms | CPU ms | × ref (wall) | × ref (CPU) |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for label, wall, cpu, ref_label, r_wall, r_cpu, ratio in rows:
        by_cpu = f"{cpu / r_cpu:.1f}" if r_cpu > 0 else "–"
        print(
            f"| {label} | {wall * 1000:.0f} | {cpu * 1000:.0f} | {ref_label} "
            f"| {r_wall * 1000:.0f} | {r_cpu * 1000:.0f} | {ratio} | {by_cpu} |"
        )
    print()
    for note in notes:
        print(f"- {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
