"""The manifests of ``m3v-batch``: one per run, what became of every input.

A run appends one JSON line per input to ``OUTDIR/manifest-RUN.jsonl`` as soon as that input is
done (written with one ``write`` and fsynced), after the input's ``.m3v`` is in place (written
atomically): a run killed at any point leaves complete lines for the outputs it finished, at
worst a last line cut short (skipped by :func:`read_records`), and never a line for an output
that is not there.  At the end of a run the same records go to ``manifest-RUN.parquet`` too, where
pyarrow is installed.

A record (:data:`FIELDS`): ``run``, ``input``, ``output`` (below OUTDIR), ``status`` (``ok``,
``skipped``: done by an earlier run and verified, ``failed``), ``error`` (one line), ``bytes``,
``sha256``, ``bpp``, ``frames``, ``clips``, ``keyframes`` (each clip's first frame), ``duration_s``
(of the coded video), ``seconds`` (wall time to code it), ``worker`` (host:pid), ``peak_rss_mb``
(the worker's peak resident memory so far, MiB), ``settings``
(digest of the encode options: an output made with other options is not reused), ``finished``
(UTC, ISO 8601) and ``notices`` (the encoder's warnings).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from m3cvc_format.atomic import atomic_file

__all__ = [
    "FIELDS",
    "LOCK_NAME",
    "Manifest",
    "RunLockedError",
    "done_records",
    "latest_records",
    "manifest_paths",
    "new_run_id",
    "read_records",
    "run_lock",
]

FIELDS = (
    "run",
    "input",
    "output",
    "status",
    "error",
    "bytes",
    "sha256",
    "bpp",
    "frames",
    "clips",
    "keyframes",
    "duration_s",
    "seconds",
    "worker",
    "peak_rss_mb",
    "settings",
    "finished",
    "notices",
)
LOCK_NAME = ".m3v-batch.lock"
_PREFIX = "manifest-"


class RunLockedError(OSError):
    """Another ``m3v-batch`` run is writing into the same output folder."""


def new_run_id(outdir: Path | None = None) -> str:
    """``20261208T031500Z-1234``: when the run started, and its process; ``-2``, ``-3``, ... after
    it where a run of this process in the same second left its files (``manifest-RUN.jsonl``,
    ``eval-RUN.jsonl``) in ``outdir``, so that no run adds to or replaces another's."""
    now = datetime.datetime.now(datetime.timezone.utc)
    run = base = f"{now:%Y%m%dT%H%M%SZ}-{os.getpid()}"
    taken = 1
    while outdir is not None and any(outdir.glob(f"*-{run}.*")):
        taken += 1
        run = f"{base}-{taken}"
    return run


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@contextlib.contextmanager
def run_lock(outdir: Path) -> Iterator[None]:
    """Hold ``OUTDIR/.m3v-batch.lock`` (an advisory lock the system drops when the process dies,
    kill -9 included) for the run; RunLockedError when another run holds it."""
    path = outdir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(f"{outdir}: another m3v-batch run is writing here") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


class Manifest:
    """The JSON Lines manifest of one run, appended record by record."""

    def __init__(self, outdir: Path, run: str) -> None:
        self.run = run
        self.path = outdir / f"{_PREFIX}{run}.jsonl"
        self.records: list[dict[str, Any]] = []
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def add(self, record: Mapping[str, Any]) -> dict[str, Any]:
        row = {name: record.get(name) for name in FIELDS}
        row["run"] = self.run
        row["finished"] = row["finished"] or utc_now()
        line = json.dumps(row, ensure_ascii=False, allow_nan=False, default=str) + "\n"
        os.write(self._fd, line.encode("utf-8"))  # one write: O_APPEND keeps lines whole
        os.fsync(self._fd)
        self.records.append(row)
        return row

    def close(self) -> Path | None:
        """Close the journal; write the Parquet copy where pyarrow imports (returns its path)."""
        os.close(self._fd)
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            return None
        types = {name: pa.string() for name in FIELDS}  # every run's file has the same schema
        types.update(bytes=pa.int64(), frames=pa.int64(), clips=pa.int64(), keyframes=pa.list_(pa.int64()))
        types.update(bpp=pa.float64(), duration_s=pa.float64(), seconds=pa.float64(), peak_rss_mb=pa.float64())
        types.update(notices=pa.list_(pa.string()))
        schema = pa.schema([(name, types[name]) for name in FIELDS])
        table = pa.table({name: [row[name] for row in self.records] for name in FIELDS}, schema=schema)
        parquet = self.path.with_suffix(".parquet")
        with atomic_file(parquet) as f:
            pq.write_table(table, f)
        return parquet


def manifest_paths(outdir: Path) -> list[Path]:
    """The JSON Lines manifests in ``outdir``, oldest run first."""
    return sorted(outdir.glob(f"{_PREFIX}*.jsonl"), key=lambda p: (p.stat().st_mtime, p.name))


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of one manifest; a line cut short by a killed run is skipped."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break  # the last line of a killed run
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("output"), str):
                yield record


def latest_records(outdir: Path) -> dict[str, dict[str, Any]]:
    """The latest record of every output (by its path below OUTDIR), over every run's manifest."""
    latest: dict[str, dict[str, Any]] = {}
    for path in manifest_paths(outdir):
        for record in read_records(path):
            latest[record["output"]] = record
    return latest


def done_records(outdir: Path) -> dict[str, dict[str, Any]]:
    """:func:`latest_records` that are ``ok`` or ``skipped`` (an output whose latest record is a
    failure is left out)."""
    return {output: r for output, r in latest_records(outdir).items() if r.get("status") in ("ok", "skipped")}
