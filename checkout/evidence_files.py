"""Evidence images on disk: deleted with their case's evidence, swept when no case holds them.

Snapshots are blurred at capture (``vision.snapshots``), but even a blurred
picture of a shopper is kept no longer than it serves a case:

- when a resolved case's evidence passes its retention (``CaseBook.purge_evidence``)
  the snapshot *files* go with the references (``remove_files``);
- a snapshot no case refers to (its case was merged away, its attachment
  failed, a request came for a case that never opened) is deleted once its
  frame is ``orphan_retention_s`` old, and so is a half-written ``.part``.

Only files inside the evidence folder are ever deleted: a reference that
points elsewhere is refused and counted (a case's paths come from the bus
and the API, so they are not trusted to name files to delete). Ages are
event time, read from the file name the snapshotter writes
(``<case>_<camera>_<frame ms>.jpg``), never from the file system's clock.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "case-1_cam-1_1800000000000.jpg").write_bytes(b"jpeg")
>>> remove_files([str(folder / "case-1_cam-1_1800000000000.jpg"), "/etc/hostname"], folder)
(1, ['/etc/hostname'])
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from checkout.cases import CaseBook

__all__ = ["EvidenceRetention", "RetentionSettings", "remove_files"]

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(?P<stem>.+)_(?P<ms>\d{10,16})\.(?P<ext>jpg|part)$")
_HASHED = re.compile(r"-[0-9a-f]{8}(?:_|$)")  # vision.snapshots._safe hashed an odd id
_DAY_S = 86_400.0


class RetentionSettings(BaseModel):
    """How long evidence is kept (event time, seconds)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    evidence_retention_s: float = Field(
        default=30 * _DAY_S,
        gt=0,
        le=3650 * _DAY_S,
        description="A resolved case's track snippets and snapshots (files too) are deleted "
        "this long after it was resolved; the case, its timeline and history stay.",
    )
    orphan_retention_s: float = Field(
        default=2 * _DAY_S,
        gt=0,
        le=365 * _DAY_S,
        description="A snapshot file no case refers to is deleted this long after its frame.",
    )
    sweep_every_s: float = Field(
        default=3600.0, gt=0, le=_DAY_S, description="Event time between two sweeps."
    )


def remove_files(paths: Iterable[str], evidence_dir: str | Path) -> tuple[int, list[str]]:
    """Delete the files among ``paths`` that lie inside ``evidence_dir``.

    Returns (files deleted, paths refused because they point outside the
    folder); a file already gone counts as neither.
    """
    root = Path(evidence_dir).resolve()
    removed, refused = 0, []
    for raw in paths:
        path = Path(raw).resolve()
        if not path.is_relative_to(root) or path == root:
            refused.append(raw)
            continue
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("evidence file %s not deleted: %s", path, exc)
    if refused:
        log.warning(
            "%d evidence path(s) outside %s not deleted, e.g. %r: evidence files must live in "
            "the evidence folder",
            len(refused),
            root,
            refused[0][:200],
        )
    return removed, refused


class EvidenceRetention:
    """Runs the retention of case evidence and of orphan snapshot files, by event time.

    Call ``tick`` with the store's clock (it sweeps every ``sweep_every_s``)
    or ``sweep`` directly.
    """

    def __init__(
        self,
        book: CaseBook,
        evidence_dir: str | Path | None,
        settings: RetentionSettings | None = None,
    ) -> None:
        """``evidence_dir`` None: no snapshot files here; case evidence is still purged."""
        self.book = book
        self.evidence_dir = Path(evidence_dir) if evidence_dir is not None else None
        self.settings = settings or RetentionSettings()
        self.counts: Counter[str] = Counter()
        self._last_s = -math.inf

    def tick(self, now_s: float) -> None:
        if now_s - self._last_s >= self.settings.sweep_every_s:
            self.sweep(now_s)

    def sweep(self, now_s: float) -> dict[str, int]:
        """Purge old resolved cases' evidence, then orphan files; returns this sweep's counts."""
        self._last_s = now_s
        before = self.book.files_removed
        items = self.book.purge_evidence(now_s - self.settings.evidence_retention_s, time_s=now_s)
        done = {"evidence_items": items, "case_files": self.book.files_removed - before}
        done |= self._orphans(now_s - self.settings.orphan_retention_s)
        self.counts.update(done)
        return done

    def _orphans(self, older_than_s: float) -> dict[str, int]:
        if self.evidence_dir is None or not self.evidence_dir.is_dir():
            return {"orphan_files": 0, "unreadable_names": 0}
        doomed, unreadable = [], 0
        for path in sorted(self.evidence_dir.iterdir()):
            found = _NAME.match(path.name)
            if not path.is_file() or found is None:
                continue
            if int(found["ms"]) / 1000.0 >= older_than_s:
                continue
            if found["ext"] == "part":
                doomed.append(str(path))  # a write that never finished
            elif _HASHED.search(found["stem"]):
                unreadable += 1  # its case id cannot be read back from the name: kept
            elif not self._referenced(path, found["stem"]):
                doomed.append(str(path))
        removed, _ = remove_files(doomed, self.evidence_dir)
        if removed:
            log.info("evidence: %d snapshot file(s) no case refers to deleted", removed)
        return {"orphan_files": removed, "unreadable_names": unreadable}

    def _referenced(self, path: Path, stem: str) -> bool:
        """Does a case hold this file? Its id is a prefix of the name, up to an underscore."""
        for cut in [m.start() for m in re.finditer("_", stem)]:
            case = self.book.get(stem[:cut])
            if case is not None and any(
                Path(s.image_path).name == path.name for s in case.evidence.snapshots
            ):
                return True
        return False
