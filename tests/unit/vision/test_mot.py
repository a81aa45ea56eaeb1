"""MOT text I/O and CLEAR-MOT / IDF1 metrics on tiny hand-made sequences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vision.mot import (
    ClearMotAccumulator,
    MotTable,
    evaluate,
    iou_xyxy,
    read_mot_text,
    read_seqinfo,
    run_eval_mot,
    write_mot_text,
)
from vision.tracking import TrackerSettings

A = (0.0, 0.0, 10.0, 10.0)  # left, top, width, height
B = (100.0, 0.0, 10.0, 10.0)
FAR = (500.0, 500.0, 10.0, 10.0)


def _table(rows: list[tuple[int, int, tuple[float, float, float, float]]]) -> MotTable:
    """MotTable from (frame, id, xywh) rows, conf 1."""
    return MotTable(
        frame=np.array([r[0] for r in rows], dtype=np.int64),
        track_id=np.array([r[1] for r in rows], dtype=np.int64),
        xywh=np.array([r[2] for r in rows], dtype=np.float64).reshape(-1, 4),
        conf=np.ones(len(rows)),
    )


def test_iou_of_known_boxes() -> None:
    a = np.array([[0.0, 0, 10, 10]])
    b = np.array([[5.0, 0, 15, 10], [20.0, 20, 30, 30], [0.0, 0, 10, 10]])
    # Half overlap: 50 / (100 + 100 - 50) = 1/3; disjoint: 0; identical: 1.
    assert iou_xyxy(a, b)[0].tolist() == pytest.approx([1 / 3, 0.0, 1.0])


def test_switch_miss_and_false_positives() -> None:
    # GT: A and B in frames 1-4 (8 boxes). Hyps: 7 covers A in 1-2, 8 covers
    # A in 3-4 (one switch at frame 3); 5 covers B in 1-3 (B missed in frame 4);
    # 6 sits far from everything in frames 3-4 (two false positives).
    gt = _table([(f, 1, A) for f in range(1, 5)] + [(f, 2, B) for f in range(1, 5)])
    hyp = _table(
        [(1, 7, A), (2, 7, A), (3, 8, A), (4, 8, A)]
        + [(f, 5, B) for f in range(1, 4)]
        + [(3, 6, FAR), (4, 6, FAR)]
    )
    m = evaluate(gt, hyp)
    assert (m.gt, m.hyp, m.matches, m.switches, m.misses, m.false_positives) == (8, 9, 7, 1, 1, 2)
    # MOTA = 1 - (FN 1 + FP 2 + IDSW 1) / GT 8 = 0.5
    assert m.mota == pytest.approx(0.5)
    # Identity pairing: A-7 (or A-8) 2 frames + B-5 3 frames -> IDTP 5.
    # IDF1 = 2 * 5 / (GT 8 + hyp 9) = 10 / 17
    assert m.idtp == 5
    assert m.idf1 == pytest.approx(10 / 17)
    assert (m.precision, m.recall) == (pytest.approx(7 / 9), pytest.approx(7 / 8))
    # A matched 4/4 (mostly tracked); B 3/4 = 0.75 (partly tracked); none lost.
    assert (m.gt_tracks, m.mostly_tracked, m.mostly_lost) == (2, 1, 0)


def test_previous_pairing_is_kept_while_still_valid() -> None:
    # Hyp 7 overlaps A with IoU 0.6 in both frames; in frame 2 hyp 8 matches A
    # exactly. CLEAR-MOT keeps 7 (no switch) and 8 is a false positive, although
    # a fresh assignment would prefer 8.
    a_part = (0.0, 0.0, 10.0, 6.0)
    gt = _table([(1, 1, A), (2, 1, A)])
    hyp = _table([(1, 7, a_part), (2, 7, a_part), (2, 8, A)])
    m = evaluate(gt, hyp)
    assert (m.matches, m.switches, m.false_positives, m.misses) == (2, 0, 1, 0)
    # MOTA = 1 - 1/2; IDTP = 2 (A-7) -> IDF1 = 4 / (2 + 3)
    assert (m.mota, m.idf1) == (pytest.approx(0.5), pytest.approx(0.8))


def test_switch_counted_after_object_reappears() -> None:
    # A is paired with 7 in frames 1-2, absent in 3, paired with 8 in 4: a switch.
    gt = _table([(1, 1, A), (2, 1, A), (4, 1, A)])
    hyp = _table([(1, 7, A), (2, 7, A), (4, 8, A)])
    m = evaluate(gt, hyp)
    assert (m.frames, m.matches, m.switches) == (4, 3, 1)
    # MOTA = 1 - 1/3; IDTP = 2 -> IDF1 = 4 / 6
    assert (m.mota, m.idf1) == (pytest.approx(2 / 3), pytest.approx(2 / 3))


@pytest.mark.parametrize(
    ("hyp_box", "matched"),
    [
        ((0.0, 0.0, 10.0, 5.0), True),  # IoU exactly 0.5 counts
        ((0.0, 0.0, 10.0, 4.9), False),  # IoU 0.49
    ],
)
def test_iou_threshold_is_half(hyp_box: tuple[float, ...], matched: bool) -> None:
    acc = ClearMotAccumulator()
    acc.update(
        [1], np.array([[0.0, 0, 10, 10]]), [3], np.array([[*hyp_box[:2], hyp_box[2], hyp_box[3]]])
    )
    m = acc.counts()
    assert (m.matches, m.misses, m.false_positives) == ((1, 0, 0) if matched else (0, 1, 1))


def test_empty_frames_count_and_empty_hypothesis_scores_zero() -> None:
    gt = _table([(2, 1, A)])
    m = evaluate(gt, _table([]), length_frames=3)
    assert (m.frames, m.misses, m.mota, m.idf1) == (3, 1, 0.0, 0.0)


def test_read_mot_text_drops_ignored_gt_rows(tmp_path: Path) -> None:
    path = tmp_path / "gt.txt"
    path.write_text("2,1,0,0,10,10,1,-1,-1,-1\n1,2,5,5,10,20,0,-1,-1,-1\n1,3,1,2,3,4,1,1,1\n")
    table = read_mot_text(path, min_conf=1.0)
    assert table.frame.tolist() == [1, 2]  # sorted by frame, conf-0 row gone
    assert table.track_id.tolist() == [3, 1]
    assert table.xyxy[0].tolist() == [1.0, 2.0, 4.0, 6.0]
    assert len(read_mot_text(path)) == 3


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    table = _table([(1, 4, (1.25, 2.5, 30.0, 60.0)), (3, 5, B)])
    write_mot_text(tmp_path / "out.txt", table)
    back = read_mot_text(tmp_path / "out.txt")
    assert back.frame.tolist() == [1, 3] and back.track_id.tolist() == [4, 5]
    assert np.allclose(back.xywh, table.xywh)


@pytest.mark.parametrize(
    ("text", "message"),
    [("[Other]\nx=1\n", "Sequence"), ("[Sequence]\nname=s\nseqLength=3\n", "frameRate")],
)
def test_read_seqinfo_errors_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "seqinfo.ini").write_text(text)
    with pytest.raises(ValueError, match=message):
        read_seqinfo(tmp_path / "seqinfo.ini")


def _write_sequence(root: Path, name: str, n_frames: int) -> None:
    """Two walkers in separate lanes; detections are the gt boxes at score 0.95."""
    seq = root / name
    (seq / "gt").mkdir(parents=True)
    (seq / "det").mkdir()
    (seq / "seqinfo.ini").write_text(
        f"[Sequence]\nname={name}\nframeRate=10\nseqLength={n_frames}\nimWidth=640\nimHeight=480\n"
    )
    gt_lines, det_lines = [], []
    for f in range(1, n_frames + 1):
        for pid, (x0, y0, vx) in enumerate([(10.0, 20.0, 5.0), (500.0, 300.0, -4.0)], start=1):
            box = f"{x0 + vx * f:.2f},{y0:.2f},40,100"
            gt_lines.append(f"{f},{pid},{box},1,1,1")
            det_lines.append(f"{f},-1,{box},0.95,-1,-1,-1")
    (seq / "gt" / "gt.txt").write_text("\n".join(gt_lines) + "\n")
    (seq / "det" / "det.txt").write_text("\n".join(det_lines) + "\n")


def test_run_eval_mot_on_clean_synthetic_sequences(tmp_path: Path) -> None:
    _write_sequence(tmp_path, "s1", 20)
    _write_sequence(tmp_path, "s2", 10)
    report = run_eval_mot(tmp_path, None, TrackerSettings(min_hits=3))
    assert sorted(report["sequences"]) == ["s1", "s2"]
    overall = report["overall"]
    # Perfect detections, SORT-style start (first min_hits frames reported): no errors.
    assert overall["gt"] == 60
    assert (overall["mota"], overall["idf1"], overall["switches"]) == (1.0, 1.0, 0)
    assert report["settings"]["min_hits"] == 3


def test_run_eval_mot_names_a_missing_sequence(tmp_path: Path) -> None:
    _write_sequence(tmp_path, "s1", 3)
    with pytest.raises(FileNotFoundError, match="nope"):
        run_eval_mot(tmp_path, ["nope"])
    with pytest.raises(FileNotFoundError, match="no MOT sequences"):
        run_eval_mot(tmp_path / "s1" / "gt")


def test_dont_care_rows_neither_credit_nor_charge_a_hypothesis() -> None:
    from vision.mot import forgive_dont_care

    gt = _table([(1, 1, A), (1, 2, B)])
    gt.conf[1] = 0  # person 2 barely in view: don't care
    hyp = _table([(1, 7, A), (1, 8, B), (1, 9, FAR)])
    counted, kept = forgive_dont_care(gt, hyp)
    assert list(counted.track_id) == [1]
    assert list(kept.track_id) == [7, 9]  # the box on person 2 is excused; FAR stays a FP
    m = evaluate(counted, kept)
    assert (m.matches, m.false_positives, m.misses) == (1, 1, 0)


def test_a_hypothesis_paired_with_a_counted_row_is_kept_even_over_a_dont_care_row() -> None:
    from vision.mot import forgive_dont_care

    gt = _table([(1, 1, A), (1, 2, A)])
    gt.conf[1] = 0
    _, kept = forgive_dont_care(gt, _table([(1, 7, A)]))
    assert list(kept.track_id) == [7]


def test_without_reidentification_splits_a_person_at_long_absences_only() -> None:
    from vision.mot import without_reidentification

    frames = [1, 2, 3, 5, 20, 21]  # a 1-frame gap, then a 14-frame one
    gt = _table([(f, 4, A) for f in frames])
    ids = without_reidentification(gt, gap_frames=5).track_id
    assert len(set(ids[:4])) == 1 and len(set(ids[4:])) == 1 and ids[0] != ids[4]
    m = evaluate(gt, without_reidentification(gt, gap_frames=5))
    assert m.switches == 1 and m.idf1 == pytest.approx(2 * 4 / 12)
