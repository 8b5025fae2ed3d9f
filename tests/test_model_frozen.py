"""The frozen dataclasses whose methods are written out (git_prov/model/frozen.py) behave as
``@dataclass(frozen=True)`` makes them: the same ``__init__`` signature and defaults (a
fresh object from each default factory), repr, equality, hash, frozenness and ``replace``.
Each is compared with a dataclass generated from its own field list."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from typing import Any

import pytest

from git_prov.model.frozen import Fields

WRITTEN = [
    "git_prov.model.record.RunRecord",
    "git_prov.model.record.Attachment",
    "git_prov.model.record.Tombstone",
    "git_prov.model.record.LocatedRun",
    "git_prov.model.record.LineProblem",
    "git_prov.model.record.ParsedNote",
    "git_prov.model.manifest.DataEntry",
    "git_prov.model.manifest.DataManifest",
    "git_prov.model.manifest.EnvironmentManifest",
    "git_prov.config.ProvConfig",
    "git_prov.recording.RunOptions",
    "git_prov.recording.Prepared",
    "git_prov.recording.RunOutcome",
    "git_prov.record_hints.DirtyReasons",
    "git_prov.capture.source.SourceState",
    "git_prov.capture.source.SnapshotChanges",
    "git_prov.capture.untracked.Policy",
    "git_prov.capture.untracked.Untracked",
    "git_prov.capture.untracked._State",
    "git_prov.capture.environment.gpu.NvidiaReport",
    "git_prov.trust.secrets.TokenShape",
    "git_prov.trust.redaction.Redactor",
    "git_prov.store.gitcli.paths.RepoPaths",
    "git_prov.history.CommitRuns",
    "git_prov.query.hints.Unfetched",
]


# Plain (mutable) dataclasses written out the same way (mutable_fields on MutableFields).
WRITTEN_MUTABLE = [
    "git_prov.store.repo.GitRepo",
    "git_prov.store.ledger.LedgerScan",
    "git_prov.query.index.IndexStats",
    "git_prov.query.index._Tips",
    "git_prov.query.index.RunIndex",
    "git_prov.query.find_json._Rows",
    "git_prov.query.find_json._Band",
]


def _class(path: str) -> Any:
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


ORDERED = {"git_prov.model.manifest.DataEntry"}  # (declared with order=True before)


def _generated(cls: Any, order: bool = False, frozen: bool = True) -> Any:
    """What ``@dataclass(frozen=frozen, order=order)`` makes of ``cls``'s fields, under the
    same name."""
    namespace: dict[str, Any] = {"__annotations__": {}, "__module__": cls.__module__}
    for f in dataclasses.fields(cls):
        namespace["__annotations__"][f.name] = f.type
        namespace[f.name] = dataclasses.field(
            default=f.default,
            default_factory=f.default_factory,
            repr=f.repr,
            compare=f.compare,
            hash=f.hash,
        )
    made = type(cls.__name__, (), namespace)
    made.__qualname__ = cls.__qualname__
    return dataclasses.dataclass(frozen=frozen, order=order)(made)


def _shape(cls: Any) -> list[tuple[str, Any, str]]:
    """``cls.__init__``'s parameters: name, kind, default."""
    params = inspect.signature(cls.__init__).parameters.values()
    return [(p.name, p.kind, repr(p.default)) for p in params]


def _values(cls: Any, mark: str) -> dict[str, Any]:
    """A value for every field: a distinct string (hashable, with a repr of its own)."""
    return {f.name: f"{mark}-{f.name}" for f in dataclasses.fields(cls)}


def test_every_written_class_says_so() -> None:
    for path in WRITTEN:
        cls = _class(path)
        assert issubclass(cls, Fields) and dataclasses.is_dataclass(cls), path
        assert "__init__" in vars(cls), path  # (written out, not inherited)
        for method in ("__repr__", "__setattr__", "__delattr__"):
            assert getattr(cls, method) is getattr(Fields, method), (path, method)


@pytest.mark.parametrize("path", WRITTEN)
def test_a_written_class_behaves_as_the_generated_one(path: str) -> None:
    cls = _class(path)
    ref = _generated(cls, order=path in ORDERED)

    assert _shape(cls) == _shape(ref)

    values = _values(cls, "a")
    ours, theirs = cls(**values), ref(**values)
    assert repr(ours) == repr(theirs)
    assert ours == cls(**values) and (theirs == ref(**values))
    assert hash(ours) == hash(theirs) == hash(cls(**values))
    other = cls(**_values(cls, "b"))
    assert ours != other and ours != theirs  # (another class is never equal, as generated)
    assert ours.__eq__(object()) is NotImplemented

    name = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(ours, name, "changed")
    with pytest.raises(dataclasses.FrozenInstanceError):
        delattr(ours, name)
    changed = dataclasses.replace(ours, **{name: "changed"})
    assert getattr(changed, name) == "changed" and changed != ours
    assert dataclasses.asdict(ours) == dataclasses.asdict(theirs)
    if path in ORDERED:
        theirs_other = ref(**_values(cls, "b"))
        for op in ("__lt__", "__le__", "__gt__", "__ge__"):
            for x, y, rx, ry in ((ours, other, theirs, theirs_other),
                                 (other, ours, theirs_other, theirs),
                                 (ours, ours, theirs, theirs)):  # fmt: skip
                assert getattr(x, op)(y) == getattr(rx, op)(ry), op
            assert getattr(ours, op)(object()) is NotImplemented


@pytest.mark.parametrize("path", WRITTEN + WRITTEN_MUTABLE)
def test_defaults_and_factories_as_generated(path: str) -> None:
    cls = _class(path)
    ref = _generated(cls, frozen=path not in WRITTEN_MUTABLE)
    required = {
        f.name: f"r-{f.name}"
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    one, two, theirs = cls(**required), cls(**required), ref(**required)
    assert repr(one) == repr(theirs)
    assert one == two
    for f in dataclasses.fields(cls):
        if f.default_factory is not dataclasses.MISSING:
            assert getattr(one, f.name) == f.default_factory()
            assert getattr(one, f.name) is not getattr(two, f.name)  # (a fresh one each)


@pytest.mark.parametrize("path", WRITTEN_MUTABLE)
def test_a_written_mutable_class_behaves_as_the_generated_one(path: str) -> None:
    from git_prov.model.frozen import MutableFields

    cls = _class(path)
    ref = _generated(cls, frozen=False)
    assert issubclass(cls, MutableFields) and dataclasses.is_dataclass(cls)
    assert "__init__" in vars(cls)

    assert _shape(cls) == _shape(ref)
    values = _values(cls, "a")
    ours, theirs = cls(**values), ref(**values)
    assert repr(ours) == repr(theirs)
    assert ours == cls(**values) and theirs == ref(**values)
    assert ours != cls(**_values(cls, "b")) and ours != theirs
    assert ours.__eq__(object()) is NotImplemented
    with pytest.raises(TypeError):
        hash(ours)
    with pytest.raises(TypeError):
        hash(theirs)
    name = dataclasses.fields(cls)[0].name
    setattr(ours, name, "changed")
    assert getattr(ours, name) == "changed" and ours != cls(**values)
    assert dataclasses.asdict(cls(**values)) == dataclasses.asdict(theirs)
    assert dataclasses.replace(ours, **{name: "again"}) == cls(**{**values, name: "again"})


def _made(cls: Any) -> bool:
    """Whether ``cls`` was made a dataclass already (its field list in place)."""
    return isinstance(vars(cls)["__dataclass_fields__"], dict)


def test_a_class_is_made_a_dataclass_when_its_fields_are_first_asked_for() -> None:
    # (Not at import: making a dataclass is start-up time spent on classes a command may
    # never ask about, issue 18.) Whichever question comes first gets the full answer.
    from git_prov.model.frozen import FRESH, frozen_fields

    def declare() -> Any:
        @frozen_fields
        class Point(Fields):
            x: int
            tags: list[str] = dataclasses.field(default_factory=list)
            label: str = "p"

            def __init__(self, x: int, tags: list[str] = FRESH, label: str = "p") -> None:
                object.__setattr__(self, "x", x)
                object.__setattr__(self, "tags", [] if tags is FRESH else tags)
                object.__setattr__(self, "label", label)

        return Point

    asks = [
        lambda cls: [f.name for f in dataclasses.fields(cls)],
        lambda cls: [f.name for f in dataclasses.fields(cls(1))],
        lambda cls: sorted(dataclasses.asdict(cls(1))),
        lambda cls: dataclasses.replace(cls(1), x=2).x,
        lambda cls: repr(cls(1)),
        lambda cls: dataclasses.is_dataclass(cls),
    ]
    for ask in asks:
        cls = declare()
        assert not _made(cls)
        assert cls(3, ["a"]).tags == ["a"] and cls(3).tags == [] and not _made(cls)
        ask(cls)
        assert _made(cls)
        assert [f.name for f in dataclasses.fields(cls)] == ["x", "tags", "label"]
        assert dataclasses.fields(cls)[1].default_factory is list
        assert repr(cls(1)).endswith("Point(x=1, tags=[], label='p')")
        assert not hasattr(cls, "tags") and cls.label == "p"  # (as @dataclass leaves them)


def test_the_start_up_of_log_makes_few_dataclasses() -> None:
    # log's modules declare a dozen; it asks about the fields of two (RunRecord's order,
    # at import, and what it compares), so the others are never made.
    import subprocess
    import sys

    code = (
        "import git_prov.cli.history, git_prov.history, git_prov.render\n"
        "import sys\n"
        "from git_prov.model.frozen import Fields, MutableFields\n"
        "ours = [c for m in list(sys.modules.values()) for c in vars(m).values()\n"
        "        if isinstance(c, type) and issubclass(c, (Fields, MutableFields))\n"
        "        and c not in (Fields, MutableFields) and c.__module__ == m.__name__]\n"
        "made = [c for c in ours if isinstance(vars(c)['__dataclass_fields__'], dict)]\n"
        "print(len(ours), len(made))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    declared, made = map(int, done.stdout.split())
    assert declared >= 8 and made <= 2, (declared, made)
