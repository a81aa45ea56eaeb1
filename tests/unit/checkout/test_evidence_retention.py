"""Evidence retention: snapshot files leave the disk with their case's evidence, orphans too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from checkout.cases import CaseBook, Finding, SnapshotRef
from checkout.evidence_files import EvidenceRetention, RetentionSettings, remove_files
from vision.snapshots import _file_name

T0 = 1.8e9
DAY = 86_400.0


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    out = tmp_path / "evidence"
    out.mkdir()
    return out


@pytest.fixture
def book(db: str, folder: Path) -> Iterator[CaseBook]:
    with CaseBook(db, evidence_dir=folder) as made:
        yield made


def shot(folder: Path, case_id: str, camera: str, frame_s: float) -> SnapshotRef:
    """A snapshot file as the edge writes it, and the reference a case keeps."""
    path = folder / _file_name(case_id, camera, frame_s)
    path.write_bytes(b"\xff\xd8 blurred jpeg")
    return SnapshotRef(camera_id=camera, time_s=frame_s, image_path=str(path))


def open_case(book: CaseBook, n: int, at_s: float = T0) -> str:
    case, _ = book.report(
        Finding(
            store_id="demo",
            rule="unattributed_removal",
            category="theft",
            incident_s=at_s,
            confidence=0.6,
            summary=f"pick with nobody near, {n}",
            session_id=f"sess-{n}",
            source_event_ids=[f"e{n}"],
        )
    )
    return case.case_id


def resolve(book: CaseBook, case_id: str, at_s: float) -> None:
    for k, state in enumerate(("in_review", "no_theft", "resolved")):
        book.transition(case_id, state, time_s=at_s + k, reviewer="ana")  # type: ignore[arg-type]


def test_purging_a_resolved_case_deletes_its_snapshot_files(book: CaseBook, folder: Path) -> None:
    old, recent, still_open = (open_case(book, n) for n in (1, 2, 3))
    files = {}
    for case_id in (old, recent, still_open):
        refs = [shot(folder, case_id, cam, T0 + 1) for cam in ("cam-ceil-01", "cam-shelf-g01")]
        book.add_snapshots(case_id, refs, time_s=T0 + 2)
        files[case_id] = [Path(r.image_path) for r in refs]
    resolve(book, old, T0 + 10)
    resolve(book, recent, T0 + 40 * DAY)
    assert book.purge_evidence(T0 + 30 * DAY, time_s=T0 + 41 * DAY) == 2
    assert not any(p.exists() for p in files[old])
    assert all(p.exists() for p in files[recent] + files[still_open])
    assert book.files_removed == 2
    record = book.get(old)
    assert record is not None and record.evidence.snapshots == []
    assert "2 of them image files" in record.history[-1].note


def test_a_reference_outside_the_evidence_folder_is_never_deleted(
    book: CaseBook, folder: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "precious.jpg"
    elsewhere.write_bytes(b"not evidence")
    case_id = open_case(book, 1)
    inside = shot(folder, case_id, "cam-ceil-01", T0)
    climbing = SnapshotRef(camera_id="cam-1", time_s=T0, image_path=str(elsewhere))
    book.add_snapshots(case_id, [inside, climbing], time_s=T0 + 1)
    resolve(book, case_id, T0 + 10)
    book.purge_evidence(T0 + DAY)
    assert elsewhere.exists() and not Path(inside.image_path).exists()
    assert remove_files([str(folder)], folder) == (0, [str(folder)])  # not the folder itself


def test_without_an_evidence_folder_files_are_left_and_said_so(
    db: str, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with CaseBook(db) as book:
        case_id = open_case(book, 1)
        ref = shot(folder, case_id, "cam-ceil-01", T0)
        book.add_snapshots(case_id, [ref], time_s=T0 + 1)
        resolve(book, case_id, T0 + 10)
        assert book.purge_evidence(T0 + DAY) == 1
    assert Path(ref.image_path).exists()
    assert "give the CaseBook its evidence_dir" in caplog.text


def test_the_sweep_deletes_old_orphans_and_keeps_what_a_case_holds(
    book: CaseBook, folder: Path
) -> None:
    held_case = open_case(book, 1)
    held = shot(folder, held_case, "cam-ceil-01", T0)
    book.add_snapshots(held_case, [held], time_s=T0 + 1)
    orphan = Path(shot(folder, "case-demo.never-opened", "cam-ceil-02", T0).image_path)
    young = Path(shot(folder, "case-demo.never-opened", "cam-ceil-02", T0 + 3 * DAY).image_path)
    half = folder / _file_name("case-demo.x", "cam-ceil-03", T0).replace(".jpg", ".part")
    half.write_bytes(b"\xff\xd8")
    odd = Path(shot(folder, "case:odd/id", "cam-ceil-01", T0).image_path)  # name not reversible
    unrelated = folder / "README.txt"
    unrelated.write_text("kept")
    sweeper = EvidenceRetention(book, folder, RetentionSettings(orphan_retention_s=2 * DAY))
    done = sweeper.sweep(T0 + 4 * DAY)
    assert done["orphan_files"] == 2 and done["unreadable_names"] == 1
    assert not orphan.exists() and not half.exists()
    assert Path(held.image_path).exists() and young.exists() and odd.exists()
    assert unrelated.exists()


def test_the_sweep_runs_the_case_retention_by_event_time(book: CaseBook, folder: Path) -> None:
    case_id = open_case(book, 1)
    ref = shot(folder, case_id, "cam-ceil-01", T0)
    book.add_snapshots(case_id, [ref], time_s=T0 + 1)
    resolve(book, case_id, T0 + 10)
    sweeper = EvidenceRetention(book, folder, RetentionSettings(evidence_retention_s=7 * DAY))
    sweeper.tick(T0 + 6 * DAY)
    assert Path(ref.image_path).exists()  # resolved 6 days ago: kept
    sweeper.tick(T0 + 6 * DAY + 60)  # within sweep_every_s: no second sweep
    assert sweeper.counts["evidence_items"] == 0
    sweeper.tick(T0 + 8 * DAY)
    assert not Path(ref.image_path).exists()
    assert sweeper.counts["evidence_items"] == 1 and sweeper.counts["case_files"] == 1
