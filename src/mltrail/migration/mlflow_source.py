"""Reading an MLflow tracking store: an ``mlruns`` folder from its files, or any tracking
URI through MLflow's own client when the ``mlflow`` package is installed.

Both give the same records (:class:`SourceExperiment`, :class:`SourceRun`,
:class:`SourceModel`), which :mod:`mltrail.migration.mlflow_import` writes as mltrail
events. A run's content (params, tags, metric points, datasets, artifacts) is read only
when the run is imported, and read whole before anything is written: a malformed part
raises :class:`SourceError` naming the file, and the run is skipped, never half-imported.

An ``mlruns`` folder is often handed over by someone else, so it is read, never trusted:

- nothing outside the folder is read. A link (to a file or a folder) that leads out of it,
  and an ``artifact_uri``/``artifact_location`` naming a place outside it, are refused and
  named: a run is imported without a refused param, tag, metric or artifact (as MLflow's
  UI shows a run whose artifact store is unreachable: everything else), and skipped when
  its own ``meta.yaml`` (or a dataset input's) is refused; an experiment, model or model
  version whose own files lead out is skipped whole. Links that stay inside are read like the files they
  name.
- every time, step and value is checked against the bounds the store keeps
  (:mod:`mltrail.storage.fields`): a start time in microseconds, a step past int64, is
  reported by file (and line) and skips its run (or model version); the unit is never
  guessed, since a value can be a typo as well as microseconds.

The folder layout (MLflow's ``FileStore``, every version from 1.x to 3.x)::

    mlruns/<experiment id>/meta.yaml               name, lifecycle_stage, artifact_location
    mlruns/<experiment id>/tags/<key>              experiment tags (nested keys as folders)
    mlruns/<experiment id>/<run id>/meta.yaml      run_name, status, start/end_time (ms), user_id
    mlruns/<experiment id>/<run id>/params/<key>   the value, as text
    mlruns/<experiment id>/<run id>/tags/<key>
    mlruns/<experiment id>/<run id>/metrics/<key>  lines "timestamp(ms) value [step]", and since
                                                   3.0 "timestamp value step dataset_name dataset_digest"
    mlruns/<experiment id>/<run id>/artifacts/     unless artifact_uri points elsewhere
    mlruns/<experiment id>/<run id>/inputs/<id>/meta.yaml   a dataset input (2.4+)
    mlruns/<experiment id>/<run id>/outputs/<model id>/meta.yaml   a logged model the run made, at a step (3.x)
    mlruns/<experiment id>/datasets/<id>/meta.yaml           the dataset it names
    mlruns/<experiment id>/models/<model id>/meta.yaml       a logged model (3.x): name, source_run_id, status
        (0-3: unspecified, pending, ready, failed), creation/last_updated_timestamp, artifact_location,
        lifecycle_stage; params/, tags/ as a run's; metrics/<key> lines "timestamp value step run_id
        [dataset_name dataset_digest]"; artifacts/ unless artifact_location points elsewhere
    mlruns/.trash/<experiment id>/                 deleted experiments
    mlruns/models/<name>/meta.yaml, version-<n>/meta.yaml, tags/, aliases/<alias>
        (a deleted version keeps its folder, its current_stage "Deleted_Internal")

MLflow 3.0 to 3.18 lay logged models out the same way (their file stores compared).
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import re
import shutil
import tempfile
import time
from array import array
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, Self
from urllib.parse import unquote, urlparse

import yaml

from ..compaction.scan import RACY_SECONDS as RACY_SECONDS  # (read when used: a test may change it here)
from ..errors import InvalidInputError, MltrailError
from ..storage.fields import INT64_MAX, LATEST_TS, dataset_text_problem
from .mlflow_client import database_kind, dispose, private_copy, quiet_mlflow, refuse_migration

# MLflow's RunStatus numbers (mlflow/protos/service.proto), as meta.yaml holds them
RUN_STATUS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
# MLflow's LoggedModelStatus numbers (LoggedModelStatus.to_int), as a logged model's meta.yaml holds them
MODEL_STATUS = {0: "UNSPECIFIED", 1: "PENDING", 2: "READY", 3: "FAILED"}
NOTE_TAG = "mlflow.note.content"  # MLflow's description of a run or an experiment
LATEST_MS = int(LATEST_TS * 1000)  # MLflow's times are milliseconds; later ones are another unit or a typo
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it: 10x faster


class SourceError(Exception):
    """A part of the MLflow store that cannot be read: ``path`` and what is wrong."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason

    def __reduce__(self) -> tuple[type[SourceError], tuple[str, str]]:  # (from a reader process)
        return SourceError, (self.path, self.reason)


@dataclass
class SourceExperiment:
    id: str
    name: str
    deleted: bool
    tags: dict[str, str]
    created_ms: int | None
    where: str  # its folder or the tracking URI, for messages

    @property
    def description(self) -> str | None:
        return self.tags.get(NOTE_TAG)


@dataclass
class Point:
    """One metric point as MLflow keeps it: since MLflow 3, with the dataset it was measured
    on (its name and digest, both or neither)."""

    timestamp_ms: int
    value: float
    step: int
    dataset_name: str | None = None
    dataset_digest: str | None = None


@dataclass
class SourceDataset:
    name: str
    digest: str
    source_type: str | None
    source: str | None
    schema: str | None
    profile: str | None
    context: str | None


def _same(path: Path) -> Path:
    """A local artifact's ``fetch``: the file is where it is."""
    return path


def _inside(folder: Callable[[], Path], path: str) -> Path:
    """A logged model's file's ``fetch``: ``path`` in the folder ``folder()`` fetches."""
    return folder() / path


@dataclass
class SourceArtifact:
    """One artifact file: fetched only when the import has not seen its ``stamp`` before
    (a local file's path, size, mtime and ctime; through the client, the run, name and size)."""

    name: str  # its path inside the run
    size: int | None
    stamp: str | None  # None: not to be trusted later (a local file changed within the last RACY_SECONDS)
    fetch: Callable[[], Path]  # a local file holding it (downloaded, through the client)


@dataclass
class RunContent:
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, list[Point]]
    datasets: list[SourceDataset]
    artifacts: list[SourceArtifact]
    notes: list[str] = field(default_factory=list)  # what was left out, said in the summary
    refused: list[SourceError] = field(default_factory=list)  # files not read (outside the source), by path
    outputs: dict[str, int] = field(default_factory=dict)  # MLflow 3: the logged models the run made -> step
    snapshot: Snapshot | None = None  # the files it was read from, as they were (an mlruns folder only)
    # a run new to the store, read by a reader process: its dense metric lines (seqs from 1) and
    # their count, built there; ``metrics`` is then left empty (see mlflow_reader)
    metric_lines: tuple[list[dict[str, Any]], int] | None = None


@dataclass
class RunIdentity:
    """What names a run and its lifecycle, as its ``meta.yaml`` (or MLflow's client) says."""

    id: str
    experiment_id: str
    name: str | None
    status: str
    start_ms: int | None
    end_ms: int | None
    deleted: bool
    user: str | None
    artifact_uri: str | None = None

    def identity(self) -> RunIdentity:
        """These fields alone (kept between imports: see :meth:`FolderSource.runs`)."""
        return RunIdentity(**{f.name: getattr(self, f.name) for f in fields(RunIdentity)})


@dataclass(kw_only=True)
class SourceRun(RunIdentity):
    """A run's identity and lifecycle; :meth:`content` reads the rest."""

    where: str  # the run's folder or URI, for messages
    content: Callable[[Path], RunContent]  # given a scratch folder for fetched artifacts
    unchanged: bool = False  # its files are as an earlier import's snapshot saw them (see FolderSource.runs)


@dataclass
class Snapshot:
    """The files and folders a run was read from, and a digest of their stat (size, mtime,
    ctime) taken before the read, as git's index keeps stat data: when a later stat of the
    same paths gives the same digest, the run holds what it held then, and an import again
    need not read it. A folder's mtime moves when an entry is added or removed, so a new
    file in a listed folder is seen too. ``paths`` are relative to the run's folder, or
    absolute for what lies outside it (a dataset's meta.yaml, artifacts kept elsewhere)."""

    paths: list[str]
    digest: str

    def holds(self, base: str) -> bool:
        return _stat_digest(base, self.paths, trusted_before=None) == self.digest


@dataclass
class KnownRun:
    """A run as an earlier import read it: its identity and the snapshot of its files."""

    identity: RunIdentity
    snapshot: Snapshot


def _stat_digest(base: str, paths: list[str], trusted_before: int | None) -> str | None:
    """The digest of the stat of ``paths`` (relative to ``base``, or absolute). Relative
    ones are looked up from ``base`` opened once: the kernel then walks one name or two,
    not the whole path, for each."""
    rows: list[tuple[str, os.stat_result | None]] = []
    try:
        folder: int | None = os.open(base, os.O_RDONLY | os.O_DIRECTORY) if _DIR_FD else None
    except OSError:
        folder = None
    try:
        for path in paths:
            try:
                stat = (os.stat(path, dir_fd=folder) if folder is not None and path != "."
                        else os.stat(os.path.join(base, path)))
            except OSError:
                stat = None
            rows.append((path, stat))
    finally:
        if folder is not None:
            os.close(folder)
    return _digest(rows, trusted_before)


_DIR_FD = os.stat in os.supports_dir_fd and hasattr(os, "O_DIRECTORY")  # (not on Windows)


def _digest(rows: list[tuple[str, os.stat_result | None]], trusted_before: int | None) -> str | None:
    """A digest of ``(path, stat or None when missing)`` rows (of their stat: the paths are
    kept beside it); None when one changed after ``trusted_before`` (ns): it may change
    again within its mtime's granularity, unseen."""
    numbers: list[int] = []
    for _, stat in rows:
        if stat is None:
            numbers += (-1, -1, -1)
            continue
        if trusted_before is not None and (stat.st_mtime_ns >= trusted_before or stat.st_ctime_ns >= trusted_before):
            return None
        numbers += (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    return hashlib.blake2b(array("q", numbers).tobytes(), digest_size=16).hexdigest()


@dataclass
class ModelPoint:
    """A logged model's metric point, with the run that logged it and its dataset."""

    key: str
    point: Point
    run_id: str | None
    dataset_name: str | None
    dataset_digest: str | None


@dataclass
class SourceLoggedModel:
    """An MLflow 3 logged model (``log_model`` since 3.0): a model of its own beside the
    runs, with its ID, params, tags, metrics and files; :attr:`files` lists the files (given
    a scratch folder for those fetched), with those refused (outside the source)."""

    id: str
    name: str
    experiment_id: str
    run_id: str | None  # MLflow's ID of the run that made it
    status: str  # MLflow's LoggedModelStatus: READY, PENDING, FAILED, UNSPECIFIED
    model_type: str | None
    created_ms: int | None
    updated_ms: int | None
    deleted: bool
    params: dict[str, str]
    tags: dict[str, str]
    metrics: list[ModelPoint]
    where: str  # its folder, or the tracking URI and its ID, for messages
    files: Callable[[Path], tuple[list[SourceArtifact], list[SourceError]]]


@dataclass
class SourceVersion:
    version: int
    run_id: str | None
    source: str | None
    description: str | None
    tags: dict[str, str]
    created_ms: int | None
    stage: str | None
    user: str | None
    model_id: str | None = None  # MLflow 3: the logged model the version is
    deleted: bool = False  # deleted in MLflow: its number stays taken there
    unreadable: SourceError | None = None  # its record cannot be read: imported as its number only


@dataclass
class SourceModel:
    name: str
    description: str | None
    tags: dict[str, str]
    aliases: dict[str, int]
    created_ms: int | None
    versions: list[SourceVersion]
    where: str
    broken: list[SourceError] = field(default_factory=list)  # versions that cannot be read, skipped


class MlflowSource:
    """What the importer reads: experiments, their runs, registered models. Used as a
    context manager: what it opened to read the source is closed at the end."""

    description: str

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release what reading the source needed (a private copy, connections)."""

    def experiments(self, include_deleted: bool) -> Iterator[SourceExperiment | SourceError]:
        raise NotImplementedError

    def runs(self, experiment: SourceExperiment, include_deleted: bool,
             known: Mapping[str, KnownRun] | None = None) -> Iterator[SourceRun | SourceError]:
        """The experiment's runs; ``known`` (runs an earlier import read, by ``where``) lets a
        source that can tell a run is unchanged give it without reading it."""
        raise NotImplementedError

    def logged_models(self, experiment: SourceExperiment,
                      include_deleted: bool) -> Iterator[SourceLoggedModel | SourceError]:
        raise NotImplementedError

    def models(self) -> Iterator[SourceModel | SourceError]:
        raise NotImplementedError


def open_source(source: str | os.PathLike[str], scratch: Path | None = None) -> MlflowSource:
    """An ``mlruns`` folder (a path or a ``file:`` URI) is read from its files; any other
    tracking URI (``sqlite:///mlflow.db``, ``http://host:5000``...) through MLflow's client,
    a sqlite file through a private copy made in ``scratch`` (default: the system's
    temporary folder). Neither writes to the source."""
    text = os.fspath(source)
    parsed = urlparse(text)
    if parsed.scheme in ("", "file") or (len(parsed.scheme) == 1 and os.name == "nt"):
        path = Path(unquote(parsed.path) if parsed.scheme == "file" else text).expanduser()
        if not path.is_dir():
            raise InvalidInputError(f"{text!r} is not a folder: give an MLflow store (an mlruns folder) "
                                    "or a tracking URI such as sqlite:///mlflow.db or http://host:5000")
        if not any((child / "meta.yaml").is_file() for child in _subfolders(path)) and not (path / "models").is_dir():
            raise InvalidInputError(f"{str(path)!r} holds no MLflow experiment (no <id>/meta.yaml): "
                                    "is it the mlruns folder itself?")
        return FolderSource(path)
    return ClientSource(text, scratch)


def _subfolders(path: Path) -> list[Path]:
    try:
        with os.scandir(path) as listing:  # is_dir() from the listing: no stat per entry
            return sorted((Path(entry.path) for entry in listing if _is_dir(entry)), key=lambda p: p.name)
    except OSError:
        return []


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


class _Fence:
    """The source folder, resolved once: an import reads nothing outside it. Only a link can
    lead out of a folder, so a walk resolves the links it meets, not every file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.real = root.resolve()

    def refused(self, path: Path) -> SourceError | None:
        """Why ``path`` may not be read (it, or a link on its way, leads out of the folder), or None."""
        real = path.resolve()  # every link on the way followed
        if real.is_relative_to(self.real):
            return None
        return SourceError(path, f"leads outside {self.root} (to {real}): not read, an import reads only the "
                                 "folder it is given")

    def check(self, path: Path) -> Path:
        refused = self.refused(path)
        if refused is not None:
            raise refused
        return path

    def check_entry(self, path: Path) -> Path:
        """:meth:`check` of a name in a folder known to be inside: only a link can lead out."""
        return self.check(path) if os.path.islink(path) else path

    def subfolders(self, path: Path) -> tuple[list[Path], list[SourceError]]:
        """The folders in ``path``, and those refused (links out of the source)."""
        error = self.refused(path)
        if error is not None:
            return [], [error]
        folders, refused = [], []
        try:
            with os.scandir(path) as listing:  # is_dir(), is_symlink() from the listing: no stat per entry
                children = sorted((entry.name, entry.is_symlink()) for entry in listing if _is_dir(entry))
        except OSError:
            return [], []
        for name, is_link in children:
            child = path / name
            error = self.refused(child) if is_link else None
            if error is None:
                folders.append(child)
            else:
                refused.append(error)
        return folders, refused

    def files(self, folder: Path) -> tuple[list[_Entry], list[SourceError]]:
        """Every file under ``folder`` (which may be a link, or missing), as :meth:`walk`
        gives them, and the links refused because they lead out."""
        if not folder.is_dir():
            return [], []
        refused = self.refused(folder)
        if refused is not None:
            return [], [refused]
        entries, errors = self.walk(folder)
        return [entry for entry in entries if not entry.is_dir], errors

    def walk(self, folder: Path) -> tuple[list[_Entry], list[SourceError]]:
        """Every folder and file under ``folder`` (which the caller knows to be inside), with
        its stat taken as it is listed, sorted by path as :class:`Path` sorts: one pass of
        ``os.scandir``. Links that stay inside are followed (a link back up, once: it is a
        loop); links that lead out are refused. Only links are resolved: a folder or file
        that is not one is inside when its parent is."""
        entries: list[_Entry] = []
        errors: list[SourceError] = []

        def visit(path: str, parts: tuple[str, ...]) -> None:
            try:
                listing = os.scandir(path)
            except OSError:  # not a folder (or gone): nothing under it
                return
            with listing:
                for entry in listing:
                    is_link = entry.is_symlink()
                    if is_link:
                        error = self.refused(Path(entry.path))
                        if error is not None:
                            errors.append(error)
                            continue
                    try:
                        is_dir = entry.is_dir()  # a link: what it names
                        stat: os.stat_result | None = entry.stat()
                    except OSError:  # a broken link, or gone since listed: reading it says so
                        is_dir, stat = False, None
                    if is_dir and is_link:
                        real, here = os.path.realpath(entry.path), os.path.realpath(path)
                        if here == real or here.startswith(real + os.sep):
                            continue  # a link to a folder it is in: walked already
                    child = (*parts, entry.name)
                    entries.append(_Entry(entry.path, child, is_dir, stat))
                    if is_dir:
                        visit(entry.path, child)

        visit(os.fspath(folder), ())
        entries.sort(key=lambda entry: entry.parts)
        return entries, errors


class _Entry(NamedTuple):
    path: str
    parts: tuple[str, ...]  # its path under the walked folder
    is_dir: bool
    stat: os.stat_result | None  # None: a broken link

    @property
    def rel(self) -> str:
        return "/".join(self.parts)


def _yaml(path: Path, fence: _Fence | None = None) -> dict[str, Any]:
    if fence is not None:
        fence.check(path)
    try:
        data = yaml.load(_read(path), Loader=_LOADER)  # noqa: S506 (the safe loader)
    except FileNotFoundError:
        raise SourceError(path, "missing (every MLflow experiment, run and model has a meta.yaml)") from None
    except (OSError, yaml.YAMLError) as exc:
        raise SourceError(path, f"not readable YAML ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise SourceError(path, "does not hold a YAML mapping")
    return data


def _text_tree(folder: Path, fence: _Fence, refused: list[SourceError] | None = None) -> dict[str, str]:
    """``{key: text}`` of a params or tags folder; nested keys (``model/depth``) are folders.
    Links out of the source are left out, and added to ``refused`` (else refuse the whole)."""
    files, errors = fence.files(folder)
    if errors:
        if refused is None:
            raise errors[0]
        refused += errors
    return _texts(files, skip=0)


def point(timestamp_ms: Any, value: float, step: Any, where: Path | str,
          dataset_name: str | None = None, dataset_digest: str | None = None) -> Point:
    """A metric point, its time and step checked against the store's bounds, and its
    dataset's name and digest against what a point may name."""
    if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int) or not 0 <= timestamp_ms <= LATEST_MS:
        raise SourceError(where, f"timestamp {timestamp_ms!r} is not a time in milliseconds between 1970 and "
                                 f"3000{_unit_hint(timestamp_ms)}; the run is skipped")
    if isinstance(step, bool) or not isinstance(step, int) or not -INT64_MAX - 1 <= step <= INT64_MAX:
        raise SourceError(where, f"step {step!r} is not a 64-bit integer; the run is skipped")
    if dataset_name is not None or dataset_digest is not None:
        for what, text in (("dataset name", dataset_name), ("dataset digest", dataset_digest)):
            problem = dataset_text_problem(text)
            if problem:
                raise SourceError(where, f"the point's {what} {text!r} {problem}; the run is skipped")
    return Point(timestamp_ms, value, step, dataset_name, dataset_digest)


def _text(path: str | Path) -> str:
    """A text file MLflow wrote; a SourceError naming it when unreadable."""
    try:
        return _read(path).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(path, f"not readable as UTF-8 text ({type(exc).__name__})") from None


def _read(path: str | Path) -> bytes:
    """A file's bytes, by the file descriptor: half the time of ``open()``'s file object
    for the small files an mlruns folder is made of (7 against 14 µs; a first import
    reads 18 a run)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _text_lines(path: Path) -> list[str]:
    return _text(path).splitlines()


_PLAIN_POINTS = re.compile(r"(?:\S+ \S+ \S+\n)+")  # "timestamp value step" lines only, as MLflow writes most


def _metric_file(path: Path) -> list[Point]:
    """A run's metric file. Bounds are checked once for the whole file (a call per point was
    a third of reading it); a file out of them is read again, point by point, to name the line."""
    text = _text(path)
    if _PLAIN_POINTS.fullmatch(text):  # parsed by column: 30 against 42 µs a file of 20 points
        fields = text.split()
        try:
            points = list(map(Point, map(int, fields[0::3]), map(float, fields[1::3]), map(int, fields[2::3])))
            if _within_bounds(points):
                return points
        except ValueError:  # (said below with its line)
            pass
    points = []
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            timestamp, value, step, dataset = _metric_line(line)
        except ValueError:
            raise SourceError(f"{path}:{number}", f"malformed metric line {line[:80]!r} (MLflow writes "
                              "'timestamp value step', and 'timestamp value step dataset_name dataset_digest' "
                              "for a point measured on a dataset)") from None
        points.append(Point(timestamp, value, step, *dataset))
    if points and _within_bounds(points):
        return points
    numbered = [number for number, line in enumerate(lines, 1) if line.strip()]
    return [point(p.timestamp_ms, p.value, p.step, f"{path}:{number}", p.dataset_name, p.dataset_digest)
            for number, p in zip(numbered, points, strict=True)]


def _within_bounds(points: list[Point]) -> bool:
    """Every time and step within the store's bounds, and no point naming a dataset (whose
    name and digest :func:`point` checks one by one)."""
    times, steps = [p.timestamp_ms for p in points], [p.step for p in points]
    return (0 <= min(times) and max(times) <= LATEST_MS and -INT64_MAX - 1 <= min(steps) and max(steps) <= INT64_MAX
            and all(p.dataset_name is None for p in points))


def _model_metric_file(path: Path) -> list[ModelPoint]:
    """A logged model's metric file: lines "timestamp value step run_id", with the
    dataset's name and digest after them when the point names one."""
    points = []
    lines = _text_lines(path)
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        try:
            if len(parts) not in (4, 6):
                raise ValueError
            timestamp, value, step = int(parts[0]), float(parts[1]), int(parts[2])
        except ValueError:
            raise SourceError(f"{path}:{number}", f"malformed metric line {line[:80]!r} (MLflow writes a "
                              "logged model's as 'timestamp value step run_id [dataset_name dataset_digest]')") from None
        dataset = parts[4:6] if len(parts) == 6 else [None, None]
        points.append(ModelPoint(path.name, point(timestamp, value, step, f"{path}:{number}"), parts[3] or None,
                                 dataset[0], dataset[1]))
    return points


def _model_status(value: Any, path: Path) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value in MODEL_STATUS:
        return MODEL_STATUS[value]
    if isinstance(value, str) and value.upper() in MODEL_STATUS.values():
        return value.upper()
    raise SourceError(path, f"status {value!r} is not an MLflow logged model status")


def _metric_line(line: str) -> tuple[int, float, int, tuple[str, str] | tuple[()]]:
    """A line of an MLflow metric file: ``timestamp value [step]``, or (MLflow 3, a point
    measured on a dataset) ``timestamp value step name digest``. MLflow writes the name as
    it is, spaces included, and reads it back with ``split(" ")``, so a name holding a space
    is a line MLflow itself can no longer read; the digest never holds one (a hash), so
    here the name is everything between the step and the last space."""
    parts = line.split()
    if len(parts) in (2, 3):
        return int(parts[0]), float(parts[1]), int(parts[2]) if len(parts) == 3 else 0, ()
    if len(parts) < 5:
        raise ValueError(line)
    head = line.strip().split(" ", 3)
    if len(head) != 4:  # fields apart by tabs: not MLflow's
        raise ValueError(line)
    name, _, digest = head[3].rpartition(" ")
    if not name or not digest:
        raise ValueError(line)
    return int(head[0]), float(head[1]), int(head[2]), (name, digest)


def _unit_hint(value: Any) -> str:
    """What a time out of bounds would be in microseconds, the usual mistake."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and LATEST_MS < value <= LATEST_MS * 1000:
        return f" (as microseconds it would be {time.strftime('%Y-%m-%d', time.gmtime(value / 1e6))}: MLflow " \
               "writes milliseconds)"
    return ""


def _ms(value: Any, path: Path | str, name: str) -> int | None:
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or not 0 <= value <= LATEST_MS):
        raise SourceError(path, f"{name} is {value!r}, not a time in milliseconds between 1970 and 3000"
                                f"{_unit_hint(value)}: correct it and import again")
    return int(value)


def _status(value: Any, path: Path) -> str:
    if isinstance(value, int) and value in RUN_STATUS:
        return RUN_STATUS[value]
    if isinstance(value, str) and value.upper() in RUN_STATUS.values():
        return value.upper()
    raise SourceError(path, f"status {value!r} is not an MLflow run status")


def _local_folder(uri: str | None) -> Path | None:
    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "":
        return Path(uri)
    return None


class FolderSource(MlflowSource):
    """An ``mlruns`` folder, read straight from its files (no MLflow needed), and only
    them: see the module's docstring for what leads outside and what is refused."""

    def __init__(self, root: Path) -> None:
        self.root = root.absolute()  # runs are known by their folder between imports, from any working folder
        self.description = str(root)
        self.fence = _Fence(self.root)

    def _folders(self, path: Path) -> Iterator[Path | SourceError]:
        folders, refused = self.fence.subfolders(path)
        yield from refused
        yield from folders

    def experiments(self, include_deleted: bool) -> Iterator[SourceExperiment | SourceError]:
        folders = [p for p in self._folders(self.root)  # (models/ and .trash/ are said where they are read)
                   if Path(p.path if isinstance(p, SourceError) else p).name not in ("models", ".trash")
                   and not Path(p.path if isinstance(p, SourceError) else p).name.startswith(".")]
        if include_deleted:
            folders += list(self._folders(self.root / ".trash"))
        seen: set[Path] = set()
        for folder in folders:
            if isinstance(folder, SourceError):
                yield folder
                continue
            if folder.resolve() in seen:  # a link to an experiment read already
                continue
            seen.add(folder.resolve())
            path = folder / "meta.yaml"
            try:
                meta = _yaml(path, self.fence)
                name = meta.get("name")
                if not isinstance(name, str) or not name:
                    raise SourceError(path, "has no experiment name")
                experiment = SourceExperiment(
                    id=str(meta.get("experiment_id", folder.name)), name=name,
                    deleted=meta.get("lifecycle_stage") == "deleted" or folder.parent.name == ".trash",
                    tags=_text_tree(folder / "tags", self.fence), created_ms=_lenient_ms(meta.get("creation_time")),
                    where=str(folder))
            except SourceError as exc:
                yield exc
                continue
            if include_deleted or not experiment.deleted:
                yield experiment

    def runs(self, experiment: SourceExperiment, include_deleted: bool,
             known: Mapping[str, KnownRun] | None = None) -> Iterator[SourceRun | SourceError]:
        """The experiment's runs. ``known``: runs an earlier import read, by folder; one whose
        snapshot still holds is given as it was then, ``unchanged``, without reading a file."""
        folder = Path(experiment.where)
        for run_dir in self._folders(folder):
            if isinstance(run_dir, SourceError):
                yield run_dir
                continue
            if run_dir.name in ("tags", "datasets", "models", "traces") or run_dir.name.startswith("."):
                continue
            earlier = known.get(str(run_dir)) if known is not None else None
            if earlier is not None and earlier.snapshot.holds(str(run_dir)):
                known_as = earlier.identity
                run = SourceRun(**vars(known_as), where=str(run_dir), unchanged=True,
                                content=self._content(run_dir, folder, known_as.artifact_uri))
                if include_deleted or not run.deleted:
                    yield run
                continue
            path = run_dir / "meta.yaml"
            try:
                meta = _yaml(self.fence.check_entry(path))
                run_id = str(meta.get("run_id") or meta.get("run_uuid") or "")
                if run_id != run_dir.name:
                    raise SourceError(path, f"names run {run_id!r}, not its folder's {run_dir.name!r}")
                artifact_uri = meta.get("artifact_uri")
                if not isinstance(artifact_uri, str):  # (not MLflow's: its artifacts are looked for in the run's folder)
                    artifact_uri = None
                run = SourceRun(
                    id=run_id, experiment_id=experiment.id, name=meta.get("run_name") or None,
                    status=_status(meta.get("status"), path),
                    start_ms=_ms(meta.get("start_time"), path, "start_time"),
                    end_ms=_ms(meta.get("end_time"), path, "end_time"),
                    deleted=meta.get("lifecycle_stage") == "deleted", user=meta.get("user_id") or None,
                    where=str(run_dir), artifact_uri=artifact_uri, content=self._content(run_dir, folder, artifact_uri))
            except SourceError as exc:
                yield exc
                continue
            if include_deleted or not run.deleted:
                yield run

    def logged_models(self, experiment: SourceExperiment,
                      include_deleted: bool) -> Iterator[SourceLoggedModel | SourceError]:
        for model_dir in self._folders(Path(experiment.where) / "models"):
            try:
                if isinstance(model_dir, SourceError):
                    raise model_dir
                model = self._logged_model(model_dir, experiment)
            except SourceError as exc:
                yield exc
                continue
            if include_deleted or not model.deleted:
                yield model

    def _logged_model(self, model_dir: Path, experiment: SourceExperiment) -> SourceLoggedModel:
        path = model_dir / "meta.yaml"
        meta = _yaml(path, self.fence)
        model_id = str(meta.get("model_id") or "")
        if model_id != model_dir.name:
            raise SourceError(path, f"names logged model {model_id!r}, not its folder's {model_dir.name!r}")
        metrics: list[ModelPoint] = []
        files, refused = self.fence.files(model_dir / "metrics")
        if refused:
            raise refused[0]
        for metric in files:
            metrics += _model_metric_file(Path(metric.path))
        folder, error = self._artifact_folder(meta.get("artifact_location"), model_dir / "artifacts", path,
                                              "artifact_location")
        return SourceLoggedModel(
            id=model_id, name=str(meta.get("name") or "model"), experiment_id=experiment.id,
            run_id=str(meta.get("source_run_id") or "") or None, status=_model_status(meta.get("status", 0), path),
            model_type=meta.get("model_type") or None,
            created_ms=_ms(meta.get("creation_timestamp"), path, "creation_timestamp"),
            updated_ms=_ms(meta.get("last_updated_timestamp"), path, "last_updated_timestamp"),
            deleted=meta.get("lifecycle_stage") == "deleted", params=_text_tree(model_dir / "params", self.fence),
            tags=_text_tree(model_dir / "tags", self.fence), metrics=metrics, where=str(model_dir),
            files=partial(self._model_files, folder, error))

    def _model_files(self, folder: Path, error: SourceError | None,
                     scratch: Path) -> tuple[list[SourceArtifact], list[SourceError]]:
        refused = [error] if error is not None else []
        return self._files(folder, "", refused), refused

    def _artifact_folder(self, uri: str | None, default: Path, meta: Path,
                         name: str) -> tuple[Path, SourceError | None]:
        """Where a run's (or a logged model's) files are: the folder its URI names when it
        exists inside the source, else ``default`` (a clone of a committed mlruns: the URI
        names the old place); a URI naming a folder outside is refused and said."""
        folder = _local_folder(uri)
        if folder is None or folder == default or not folder.is_dir():  # (default: inside, as its run is)
            return default, None
        refused = self.fence.refused(folder)
        if refused is None:
            return folder, None
        return default, SourceError(folder, f"the {name} in {meta} names a folder outside {self.root}: its files "
                                            f"are not read (copy them into the run's artifacts folder to import them)")

    def models(self) -> Iterator[SourceModel | SourceError]:
        for folder in self._folders(self.root / "models"):
            if isinstance(folder, SourceError):
                yield folder
                continue
            path = folder / "meta.yaml"
            try:
                meta = _yaml(path, self.fence)
                aliases = {alias: int(version) for alias, version in (meta.get("aliases") or {}).items()}
                for alias, text in _text_tree(folder / "aliases", self.fence).items():
                    aliases[alias] = int(text.strip())
                versions, broken = [], []
                for version_dir in self._folders(folder):
                    if isinstance(version_dir, SourceError):
                        broken.append(version_dir)
                        continue
                    if not version_dir.name.startswith("version-"):
                        continue
                    try:
                        versions.append(self._version(version_dir))
                    except SourceError as exc:  # that version, not the model; its number is kept when known
                        number = version_dir.name.removeprefix("version-")
                        if number.isdigit():
                            versions.append(SourceVersion(int(number), None, None, None, {}, None, None, None,
                                                          unreadable=exc))
                        else:
                            broken.append(exc)
                yield SourceModel(name=str(meta.get("name", folder.name)), description=meta.get("description") or None,
                                  tags=_text_tree(folder / "tags", self.fence), aliases=aliases,
                                  created_ms=_ms(meta.get("creation_timestamp"), path, "creation_timestamp"),
                                  versions=sorted(versions, key=lambda v: v.version), where=str(folder), broken=broken)
            except SourceError as exc:
                yield exc
            except (TypeError, ValueError) as exc:
                yield SourceError(folder, f"a version number or alias is not a number ({exc})")

    def _version(self, version_dir: Path) -> SourceVersion:
        path = version_dir / "meta.yaml"
        meta = _yaml(path, self.fence)
        return SourceVersion(
            version=int(meta.get("version", version_dir.name.removeprefix("version-"))),
            run_id=meta.get("run_id") or None, source=meta.get("source") or None,
            description=meta.get("description") or None, tags=_text_tree(version_dir / "tags", self.fence),
            created_ms=_ms(meta.get("creation_timestamp"), path, "creation_timestamp"),
            stage=meta.get("current_stage") or None, user=meta.get("user_id") or None,
            model_id=meta.get("model_id") or None, deleted=meta.get("current_stage") == "Deleted_Internal")

    def _content(self, run_dir: Path, experiment_dir: Path, artifact_uri: str | None) -> Callable[[Path], RunContent]:
        def read(scratch: Path) -> RunContent:
            # every stat first (one walk of the run's folder), then the reads: a file changed
            # during the import differs from the snapshot, and the next import reads it again
            trusted_before = time.time_ns() - int(RACY_SECONDS * 1e9)
            rows: list[tuple[str, os.stat_result | None]] = [(".", os.stat(run_dir))]
            entries, refused = self.fence.walk(run_dir)
            for error in refused:
                if Path(error.path).relative_to(run_dir).parts[0] in ("inputs", "outputs"):
                    raise error  # what the run read or made: not importable without it
            rows += [(entry.rel, entry.stat) for entry in entries]
            parts: dict[str, list[_Entry]] = {}
            for entry in entries:
                if len(entry.parts) > 1:
                    parts.setdefault(entry.parts[0], []).append(entry)
            metrics = {"/".join(entry.parts[1:]): _metric_file(Path(entry.path))
                       for entry in parts.get("metrics", []) if not entry.is_dir}
            datasets, dataset_rows = self._datasets(parts.get("inputs", []), experiment_dir)
            rows += dataset_rows
            content = RunContent(params=_texts(parts.get("params", [])), tags=_texts(parts.get("tags", [])),
                                 metrics=metrics, datasets=datasets, artifacts=[])
            if artifact_uri and _local_folder(artifact_uri) is None:  # s3://, mlflow-artifacts:/...: not a folder here
                content.notes.append(f"artifacts at {artifact_uri} not copied (import through a tracking URI "
                                     "with mlflow installed to fetch them)")
            default = run_dir / "artifacts"
            uri_folder = _local_folder(artifact_uri)
            if uri_folder is not None and uri_folder != default:  # whether it is there decides which is read
                rows.append((str(uri_folder), _stat_or_none(uri_folder)))
            folder, outside = self._artifact_folder(artifact_uri, default, run_dir / "meta.yaml", "artifact_uri")
            refused += [outside] if outside is not None else []
            if folder == default:
                content.artifacts = _artifacts([entry for entry in parts.get("artifacts", []) if not entry.is_dir],
                                               trusted_before)
            else:
                elsewhere, errors = self.fence.walk(folder)
                refused += errors
                rows += [(entry.path, entry.stat) for entry in elsewhere]
                content.artifacts = _artifacts([entry for entry in elsewhere if not entry.is_dir], trusted_before, 0)
            content.outputs = self._outputs(parts.get("outputs", []))
            content.refused = refused
            paths = [path for path, _ in rows]
            digest = _digest(rows, trusted_before)
            content.snapshot = Snapshot(paths, digest) if digest is not None else None
            return content
        return read

    def _outputs(self, entries: list[_Entry]) -> dict[str, int]:
        """The logged models the run made (MLflow 3's ``outputs/<model ID>/meta.yaml``), by
        ID, with the step each was logged at."""
        outputs: dict[str, int] = {}
        for entry in entries:
            if entry.parts[2:] != ("meta.yaml",):
                continue
            step = _yaml(Path(entry.path)).get("step") or 0
            if isinstance(step, bool) or not isinstance(step, int) or not -INT64_MAX - 1 <= step <= INT64_MAX:
                raise SourceError(entry.path, f"step {step!r} is not a 64-bit integer")
            outputs[entry.parts[1]] = step
        return outputs

    def _files(self, folder: Path, prefix: str, refused: list[SourceError]) -> list[SourceArtifact]:
        found, errors = self.fence.files(folder)
        refused += errors
        return _artifacts(found, time.time_ns() - int(RACY_SECONDS * 1e9), 0, prefix)

    def _datasets(self, entries: list[_Entry],
                  experiment_dir: Path) -> tuple[list[SourceDataset], list[tuple[str, os.stat_result | None]]]:
        """The dataset inputs among a run's ``inputs/`` entries, and the stat of the dataset
        files they name (in the experiment's ``datasets/``, outside the run's folder)."""
        datasets, rows = [], []
        for entry in entries:
            if entry.parts[2:] != ("meta.yaml",):
                continue
            meta = _yaml(Path(entry.path))
            if meta.get("source_type") not in ("DATASET", 1, None):  # MLflow 3 also links logged models here
                continue
            path = experiment_dir / "datasets" / str(meta.get("source_id")) / "meta.yaml"
            rows.append((str(path), _stat_or_none(path)))
            dataset = _yaml(path, self.fence)
            tags = meta.get("tags") or {}
            datasets.append(_dataset(dataset, tags.get("mlflow.data.context") if isinstance(tags, dict) else None))
        return datasets, rows


def read_content(content: Callable[[Path], RunContent], scratch: Path, where: str) -> RunContent | SourceError:
    """A run's content, or why it cannot be read: what skips that run, not the import."""
    try:
        return content(scratch)
    except SourceError as exc:
        return exc
    except OSError as exc:  # (gone since listed, unreadable)
        return SourceError(where, f"{exc.strerror or type(exc).__name__}: {exc.filename}")
    except MltrailError as exc:
        return SourceError(where, str(exc))


def _stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _texts(entries: list[_Entry], skip: int = 1) -> dict[str, str]:
    """``{key: text}`` of the files among a params or tags folder's walk entries, each keyed by
    its path less its first ``skip`` parts (1: the walk began above the folder); nested keys
    (``model/depth``) are folders."""
    return {"/".join(entry.parts[skip:]): _text(entry.path) for entry in entries if not entry.is_dir}


def _artifacts(files: list[_Entry], trusted_before: int, skip: int = 1, prefix: str = "") -> list[SourceArtifact]:
    """The artifacts among a walk's files, named by their path less its first ``skip`` parts."""
    artifacts = []
    for entry in files:
        stat = entry.stat
        # as git does for its index: a file changed just now may change again within its
        # mtime's granularity, so its stamp is not one a later import can trust
        # (ctime too: a file copied over it with its mtime kept, as ``cp -p`` does, changes only that)
        stamp = (f"file:{os.path.realpath(entry.path)}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}"
                 if stat is not None and max(stat.st_mtime_ns, stat.st_ctime_ns) < trusted_before else None)
        artifacts.append(SourceArtifact(prefix + "/".join(entry.parts[skip:]), stat.st_size if stat else None, stamp,
                                        partial(_same, Path(entry.path))))
    return artifacts


def _lenient_ms(value: Any) -> int | None:
    """An experiment's creation time: the import does not use it, so one that is not a time
    never leaves the experiment's runs behind."""
    try:
        return _ms(value, "", "creation_time")
    except SourceError:
        return None


def _dataset(record: dict[str, Any], context: str | None) -> SourceDataset:
    return SourceDataset(name=str(record.get("name") or "dataset"), digest=str(record.get("digest") or ""),
                         source_type=record.get("source_type"), source=record.get("source"),
                         schema=record.get("schema"), profile=record.get("profile"), context=context)


class ClientSource(MlflowSource):
    """Any tracking URI MLflow's client opens (``sqlite:///mlflow.db``, ``http://...``,
    ``databricks``); needs the ``mlflow`` (or ``mlflow-skinny``) package. The source is
    never written: a sqlite file is read through a private copy in ``scratch``, a server's
    database only at the installed MLflow's schema (:mod:`mltrail.migration.mlflow_client`),
    and MLflow's progress bars and INFO lines are off until :meth:`close`."""

    PAGE = 1000

    def __init__(self, uri: str, scratch: Path | None = None) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ModuleNotFoundError:
            raise InvalidInputError(f"reading {uri!r} needs MLflow's client: pip install mlflow-skinny "
                                    "(an mlruns folder is read without it)") from None
        self.description = uri  # the source as the user named it: in messages and artifact stamps
        self.uri = uri  # what the client opens
        self._closing = ExitStack()
        try:
            self._closing.enter_context(quiet_mlflow())
            kind = database_kind(uri)
            if kind is not None and None in map(importlib.util.find_spec, ("sqlalchemy", "alembic")):
                raise InvalidInputError(f"reading {uri!r} needs sqlalchemy and alembic, as MLflow's database "
                                        "store does: pip install sqlalchemy alembic")
            if kind == "sqlite":
                if scratch is not None:
                    scratch.mkdir(parents=True, exist_ok=True)
                folder = self._closing.enter_context(tempfile.TemporaryDirectory(dir=scratch, prefix="mlflow-db-"))
                self.uri = private_copy(uri, Path(folder))
            elif kind is not None:
                refuse_migration(uri)
            # a database store keeps its registry in the same database (the copy, for sqlite)
            self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri if kind else None)
            self._closing.callback(dispose, self.client)
        except BaseException:
            self._closing.close()
            raise

    def close(self) -> None:
        self._closing.close()

    def _pages(self, call: Callable[..., Any], **kwargs: Any) -> Iterator[Any]:
        token = None
        while True:
            page = call(page_token=token, **kwargs)
            yield from page
            token = page.token
            if not token:
                return

    def experiments(self, include_deleted: bool) -> Iterator[SourceExperiment | SourceError]:
        from mlflow.entities import ViewType

        view = ViewType.ALL if include_deleted else ViewType.ACTIVE_ONLY
        for exp in self._pages(self.client.search_experiments, view_type=view, max_results=self.PAGE):
            yield SourceExperiment(id=str(exp.experiment_id), name=exp.name, deleted=exp.lifecycle_stage == "deleted",
                                   tags=dict(exp.tags), created_ms=getattr(exp, "creation_time", None),
                                   where=f"{self.description} experiment {exp.experiment_id}")

    def runs(self, experiment: SourceExperiment, include_deleted: bool,
             known: Mapping[str, KnownRun] | None = None) -> Iterator[SourceRun | SourceError]:
        from mlflow.entities import ViewType

        view = ViewType.ALL if include_deleted else ViewType.ACTIVE_ONLY
        for run in self._pages(self.client.search_runs, experiment_ids=[experiment.id], run_view_type=view,
                               max_results=self.PAGE):
            info = run.info
            where = f"{self.description} run {info.run_id}"
            try:
                start_ms, end_ms = _ms(info.start_time, where, "start_time"), _ms(info.end_time, where, "end_time")
            except SourceError as exc:
                yield exc
                continue
            yield SourceRun(id=info.run_id, experiment_id=experiment.id, name=info.run_name or None,
                            status=str(info.status), start_ms=start_ms, end_ms=end_ms,
                            deleted=info.lifecycle_stage == "deleted", user=info.user_id or None, where=where,
                            content=self._content(run))

    def logged_models(self, experiment: SourceExperiment,
                      include_deleted: bool) -> Iterator[SourceLoggedModel | SourceError]:
        """The experiment's logged models (MLflow's client answers no deleted one)."""
        if not hasattr(self.client, "search_logged_models"):  # MLflow 2: none
            return
        for model in self._pages(self.client.search_logged_models, experiment_ids=[experiment.id],
                                 max_results=self.PAGE):
            where = f"{self.description} logged model {model.model_id}"
            try:
                metrics = [ModelPoint(m.key, point(m.timestamp, m.value, m.step, f"{where} metric {m.key}"),
                                      m.run_id or None, m.dataset_name or None, m.dataset_digest or None)
                           for m in model.metrics or []]
                created = _ms(model.creation_timestamp, where, "creation_timestamp")
                updated = _ms(model.last_updated_timestamp, where, "last_updated_timestamp")
            except SourceError as exc:
                yield exc
                continue
            yield SourceLoggedModel(
                id=model.model_id, name=model.name or "model", experiment_id=experiment.id,
                run_id=model.source_run_id or None, status=str(model.status), model_type=model.model_type or None,
                created_ms=created, updated_ms=updated, deleted=False, params=dict(model.params or {}),
                tags=dict(model.tags or {}), metrics=metrics, where=where,
                files=partial(self._logged_model_files, model.model_id, str(model.artifact_location)))

    def _content(self, run: Any) -> Callable[[Path], RunContent]:
        def read(scratch: Path) -> RunContent:
            from mlflow.exceptions import MlflowException

            run_id = run.info.run_id
            try:
                histories = {key: self.client.get_metric_history(run_id, key) for key in run.data.metrics}
            except MlflowException as exc:  # the store lists the run but cannot read it: that run only is skipped
                raise SourceError(f"{self.description} run {run_id}", f"its metrics cannot be read ({exc})") from None
            # MLflow 3's points name the dataset they were measured on (its sqlite store keeps
            # no such link for a run's metrics, only for a logged model's)
            metrics = {key: [point(m.timestamp, m.value, m.step, f"{self.description} run {run_id} metric {key}",
                                   getattr(m, "dataset_name", None), getattr(m, "dataset_digest", None))
                             for m in history] for key, history in histories.items()}
            datasets = []
            for item in getattr(run.inputs, "dataset_inputs", None) or []:
                tags = {t.key: t.value for t in item.tags}
                d = item.dataset
                datasets.append(_dataset({"name": d.name, "digest": d.digest, "source_type": d.source_type,
                                          "source": d.source, "schema": d.schema, "profile": d.profile},
                                         tags.get("mlflow.data.context")))
            content = RunContent(params=dict(run.data.params), tags=dict(run.data.tags), metrics=metrics,
                                 datasets=datasets, artifacts=[])
            content.artifacts = self._listed(run_id, scratch / run_id)
            outputs = getattr(run, "outputs", None)  # MLflow 3: the logged models the run made
            content.outputs = {o.model_id: int(o.step or 0) for o in getattr(outputs, "model_outputs", None) or []}
            return content
        return read

    def _listed(self, run_id: str, target: Path) -> list[SourceArtifact]:
        """The run's artifact files, each downloaded when the import asks for it."""
        files: list[SourceArtifact] = []
        folders: list[str | None] = [None]
        while folders:
            folder = folders.pop()
            try:
                listed = self.client.list_artifacts(run_id, folder)
            except Exception as exc:  # noqa: BLE001 (any artifact repository's error names the run)
                raise SourceError(f"{self.description} run {run_id}", f"its artifacts cannot be listed ({exc})") from None
            for info in listed:
                if info.is_dir:
                    folders.append(info.path)
                    continue
                files.append(SourceArtifact(info.path, info.file_size, f"{self.description}|{run_id}|{info.path}|"
                                            f"{info.file_size}", partial(self._download, run_id, info.path, target)))
        return sorted(files, key=lambda a: a.name)

    def _download(self, run_id: str, path: str, target: Path) -> Path:
        target.mkdir(parents=True, exist_ok=True)
        try:
            return Path(self.client.download_artifacts(run_id, path, str(target)))
        except Exception as exc:  # noqa: BLE001
            raise SourceError(f"{self.description} run {run_id}", f"artifact {path} cannot be fetched ({exc})") from None

    def _logged_model_files(self, model_id: str, location: str,
                            scratch: Path) -> tuple[list[SourceArtifact], list[SourceError]]:
        """A logged model's files: fetched together, when the import first needs one of them
        (its files never change once it is logged)."""
        from mlflow.artifacts import download_artifacts

        fetched: list[Path] = []
        target = scratch / ".models" / model_id

        def local() -> Path:
            if not fetched:
                shutil.rmtree(target, ignore_errors=True)
                target.mkdir(parents=True)
                try:
                    fetched.append(Path(download_artifacts(artifact_uri=location, dst_path=str(target),
                                                           tracking_uri=self.uri)))
                except Exception as exc:  # noqa: BLE001 (any artifact repository's error names the model)
                    raise SourceError(f"{self.description} logged model {model_id}",
                                      f"its files cannot be fetched ({exc})") from None
            return fetched[0]

        files: list[SourceArtifact] = []
        folders: list[str | None] = [None]
        while folders:
            folder = folders.pop()
            try:
                listed = self.client.list_logged_model_artifacts(model_id, folder)
            except Exception as exc:  # noqa: BLE001 (any artifact repository's error names the model)
                raise SourceError(f"{self.description} logged model {model_id}",
                                  f"its files cannot be listed ({exc})") from None
            for info in listed:
                if info.is_dir:
                    folders.append(info.path)
                    continue
                files.append(SourceArtifact(info.path, info.file_size,
                                            f"{self.description}|{model_id}|{info.path}|{info.file_size}",
                                            partial(_inside, local, info.path)))
        return sorted(files, key=lambda a: a.name), []

    def models(self) -> Iterator[SourceModel | SourceError]:
        for model in self._pages(self.client.search_registered_models, max_results=self.PAGE):
            where = f"{self.description} model {model.name}"
            versions = []
            for v in self._pages(self.client.search_model_versions, filter_string=f"name = '{_quoted(model.name)}'",
                                 max_results=self.PAGE):  # (paged: a model with many versions keeps them all)
                try:
                    created = _ms(v.creation_timestamp, f"{where} version {v.version}", "creation_timestamp")
                except SourceError as exc:  # imported as its number only
                    versions.append(SourceVersion(int(v.version), None, None, None, {}, None, None, None,
                                                  unreadable=exc))
                    continue
                versions.append(SourceVersion(version=int(v.version), run_id=v.run_id or None, source=v.source or None,
                                              description=v.description or None, tags=dict(v.tags),
                                              created_ms=created, stage=v.current_stage or None,
                                              user=v.user_id or None, model_id=getattr(v, "model_id", None) or None))
            aliases = model.aliases if isinstance(model.aliases, dict) else {a.alias: a.version for a in model.aliases}
            try:
                created = _ms(model.creation_timestamp, where, "creation_timestamp")
            except SourceError as exc:
                yield exc
                continue
            yield SourceModel(name=model.name, description=model.description or None, tags=dict(model.tags),
                              aliases={a: int(v) for a, v in aliases.items()}, created_ms=created,
                              versions=sorted(versions, key=lambda v: v.version), where=where)


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def scratch_folder(parent: Path) -> tempfile.TemporaryDirectory[str]:
    """A folder for artifacts fetched through the client, removed after the import."""
    parent.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(dir=parent, prefix="mlflow-import-")
