"""MOTChallenge text I/O, CLEAR-MOT and identity metrics, and ``run_eval_mot``.

Text format, one box per line: ``frame, id, left, top, width, height, conf,
class, visibility, ...`` with 1-based frames. In ground truth a row whose
``conf`` is 0 is ignored (the MOTChallenge convention, as py-motmetrics'
``min_confidence=1``; ``forgive_dont_care`` also excuses the hypotheses on
such rows); in detection files ``id`` is -1.

Metrics follow the CLEAR-MOT conventions as py-motmetrics implements them: a
ground-truth box and a hypothesis box may be paired when their IoU is at
least 0.5; an object's last pairing is kept while it stays valid;
the remaining boxes are paired by an exact assignment that maximises the
number of pairs, then minimises the summed ``1 - IoU``. An identity switch is
a ground-truth object paired with a different hypothesis than last time.
IDF1 pairs ground-truth and hypothesis identities once for the whole sequence
to maximise the number of frames where the paired boxes overlap.

>>> import numpy as np
>>> acc = ClearMotAccumulator()
>>> acc.update([1], np.array([[0.0, 0, 10, 10]]), [7], np.array([[1.0, 0, 10, 10]]))
>>> acc.update([1], np.array([[0.0, 0, 10, 10]]), [8], np.array([[0.0, 0, 10, 10]]))
>>> m = acc.counts()
>>> (m.matches, m.switches, m.mota, m.idf1)
(2, 1, 0.5, 0.5)
"""

from __future__ import annotations

import configparser
import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from vision.assignment import match_capped, match_max_cardinality
from vision.detections import Detections
from vision.recall import FrameDetector, iter_frames
from vision.tracking import Tracker, TrackerSettings, iou_xyxy

__all__ = [
    "ClearMotAccumulator",
    "MotCounts",
    "MotTable",
    "SeqInfo",
    "detect_sequence",
    "evaluate",
    "iou_xyxy",
    "read_mot_text",
    "read_seqinfo",
    "run_eval_mot",
    "track_sequence",
    "write_mot_text",
]

log = logging.getLogger(__name__)

IOU_MATCH = 0.5  # CLEAR-MOT / MOTChallenge pairing threshold


# ---------------------------------------------------------------- I/O


@dataclass(frozen=True)
class SeqInfo:
    """What ``seqinfo.ini`` says about a sequence."""

    name: str
    frame_rate_hz: float
    length_frames: int
    width_px: int
    height_px: int


def read_seqinfo(path: Path) -> SeqInfo:
    """Read a MOTChallenge ``seqinfo.ini``; errors name the file and the missing key."""
    parser = configparser.ConfigParser()
    if not parser.read(path):
        raise FileNotFoundError(f"seqinfo not found or unreadable: {path}")
    if "Sequence" not in parser:
        raise ValueError(f"{path}: no [Sequence] section; is this a MOTChallenge seqinfo.ini?")
    sec = parser["Sequence"]
    try:
        return SeqInfo(
            name=sec.get("name", path.parent.name),
            frame_rate_hz=float(sec["frameRate"]),
            length_frames=int(sec["seqLength"]),
            width_px=int(sec.get("imWidth", "0")),
            height_px=int(sec.get("imHeight", "0")),
        )
    except KeyError as exc:
        raise ValueError(
            f"{path}: [Sequence] lacks key {exc}; add it (frameRate, seqLength)"
        ) from exc


@dataclass(frozen=True)
class MotTable:
    """Rows of a MOT text file as parallel arrays, sorted by frame.

    ``xywh`` is (left, top, width, height) in pixels, float64 (N, 4).
    """

    frame: np.ndarray
    track_id: np.ndarray
    xywh: np.ndarray
    conf: np.ndarray

    def __len__(self) -> int:
        return int(self.frame.shape[0])

    @property
    def xyxy(self) -> np.ndarray:
        """Boxes as (left, top, right, bottom)."""
        return np.concatenate([self.xywh[:, :2], self.xywh[:, :2] + self.xywh[:, 2:]], axis=1)

    def select(self, mask: np.ndarray) -> MotTable:
        """Only the rows where ``mask`` is true."""
        return MotTable(self.frame[mask], self.track_id[mask], self.xywh[mask], self.conf[mask])

    def by_frame(self) -> dict[int, np.ndarray]:
        """Row indices per frame number (rows need not be sorted)."""
        if not len(self):
            return {}
        order = np.argsort(self.frame, kind="stable")
        frames, starts = np.unique(self.frame[order], return_index=True)
        ends = np.append(starts[1:], len(self))
        return {int(f): order[s:e] for f, s, e in zip(frames, starts, ends, strict=True)}


def read_mot_text(path: Path, *, min_conf: float | None = None) -> MotTable:
    """Read a MOT text file; rows with ``conf < min_conf`` are dropped when given.

    Use ``min_conf=1`` for ground truth (conf 0 marks rows to ignore).
    """
    try:
        raw = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64, usecols=range(7))
    except ValueError as exc:
        raise ValueError(
            f"{path}: not MOT text (frame, id, left, top, width, height, conf): {exc}"
        ) from exc
    if raw.size == 0:
        raw = np.zeros((0, 7))
    if raw.shape[1] < 7:
        raise ValueError(f"{path}: MOT rows need at least 7 columns, found {raw.shape[1]}")
    if min_conf is not None:
        raw = raw[raw[:, 6] >= min_conf]
    raw = raw[np.argsort(raw[:, 0], kind="stable")]
    return MotTable(
        frame=raw[:, 0].astype(np.int64),
        track_id=raw[:, 1].astype(np.int64),
        xywh=raw[:, 2:6].copy(),
        conf=raw[:, 6].copy(),
    )


def write_mot_text(path: Path, table: MotTable) -> None:
    """Write rows as MOT text (class, visibility and 3-D columns as -1)."""
    with path.open("w", encoding="utf-8") as fh:
        for f, i, box, c in zip(table.frame, table.track_id, table.xywh, table.conf, strict=True):
            fh.write(
                f"{f},{i},{box[0]:.2f},{box[1]:.2f},{box[2]:.2f},{box[3]:.2f},{c:.4f},-1,-1,-1\n"
            )


# ---------------------------------------------------------------- metrics


@dataclass
class MotCounts:
    """Summed CLEAR-MOT and identity counts; rates are derived properties."""

    frames: int = 0
    gt: int = 0  # ground-truth boxes
    hyp: int = 0  # hypothesis boxes
    matches: int = 0  # paired boxes, switches included
    switches: int = 0
    false_positives: int = 0
    misses: int = 0
    idtp: int = 0
    idfp: int = 0
    idfn: int = 0
    gt_tracks: int = 0
    mostly_tracked: int = 0
    mostly_lost: int = 0

    def __add__(self, other: MotCounts) -> MotCounts:
        return MotCounts(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    @property
    def mota(self) -> float:
        """1 - (misses + false positives + switches) / ground-truth boxes."""
        errors = self.misses + self.false_positives + self.switches
        return 1.0 - errors / self.gt if self.gt else float("nan")

    @property
    def idf1(self) -> float:
        """2 IDTP / (2 IDTP + IDFP + IDFN)."""
        denom = 2 * self.idtp + self.idfp + self.idfn
        return 2 * self.idtp / denom if denom else float("nan")

    @property
    def precision(self) -> float:
        return self.matches / self.hyp if self.hyp else float("nan")

    @property
    def recall(self) -> float:
        return self.matches / self.gt if self.gt else float("nan")

    def as_dict(self) -> dict[str, float | int]:
        """Counts and rates, rates rounded to 4 places (for JSON reports)."""
        out: dict[str, float | int] = asdict(self)
        for name in ("mota", "idf1", "precision", "recall"):
            out[name] = round(float(getattr(self, name)), 4)
        return out


@dataclass
class ClearMotAccumulator:
    """Frame-by-frame CLEAR-MOT state for one sequence; ``counts()`` adds IDF1."""

    iou_threshold: float = IOU_MATCH
    counts_so_far: MotCounts = field(default_factory=MotCounts)
    _pair: dict[int, int] = field(default_factory=dict)  # gt id -> hyp id, last pairing
    _gt_frames: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    _gt_matched: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    _hyp_frames: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    _overlap: dict[tuple[int, int], int] = field(default_factory=lambda: defaultdict(int))

    def update(
        self,
        gt_ids: Sequence[int] | np.ndarray,
        gt_xyxy: np.ndarray,
        hyp_ids: Sequence[int] | np.ndarray,
        hyp_xyxy: np.ndarray,
    ) -> None:
        """Score one frame (call once per frame, in order, even when both are empty)."""
        dist = 1.0 - iou_xyxy(gt_xyxy, hyp_xyxy)
        self.update_distances(gt_ids, hyp_ids, dist, 1.0 - self.iou_threshold)

    def update_distances(
        self,
        gt_ids: Sequence[int] | np.ndarray,
        hyp_ids: Sequence[int] | np.ndarray,
        dist: np.ndarray,
        max_dist: float,
    ) -> None:
        """Score one frame from a (gt, hyp) distance matrix; pairs need ``dist <= max_dist``.

        ``update`` passes ``1 - IoU``; floor tracks pass metres between positions.
        """
        c = self.counts_so_far
        c.frames += 1
        gids = [int(g) for g in gt_ids]
        hids = [int(h) for h in hyp_ids]
        c.gt += len(gids)
        c.hyp += len(hids)
        valid = dist <= max_dist
        self._count_identity(gids, hids, valid)
        free_g = np.ones(len(gids), dtype=bool)
        free_h = np.ones(len(hids), dtype=bool)
        hyp_col = {h: j for j, h in enumerate(hids)}
        # 1. Keep each object's last pairing while it is still valid (even after
        #    a gap, as py-motmetrics does), so a good track is never re-shuffled.
        for i, g in enumerate(gids):
            if g not in self._pair:
                continue
            j = hyp_col.get(self._pair[g])
            if j is not None and free_h[j] and valid[i, j]:
                free_g[i] = free_h[j] = False
                self._record_match(g, hids[j], switch=False)
        # 2. Pair the rest: most pairs, then least summed distance.
        gi, hj = np.flatnonzero(free_g), np.flatnonzero(free_h)
        sub = np.where(valid[np.ix_(gi, hj)], dist[np.ix_(gi, hj)], np.nan)
        for r, k in zip(*match_max_cardinality(sub, max_dist), strict=True):
            g, h = gids[gi[r]], hids[hj[k]]
            free_g[gi[r]] = free_h[hj[k]] = False
            self._record_match(g, h, switch=g in self._pair and self._pair[g] != h)
        c.misses += int(free_g.sum())
        c.false_positives += int(free_h.sum())

    def _record_match(self, g: int, h: int, *, switch: bool) -> None:
        self.counts_so_far.matches += 1
        self.counts_so_far.switches += int(switch)
        self._pair[g] = h
        self._gt_matched[g] += 1

    def _count_identity(self, gids: list[int], hids: list[int], valid: np.ndarray) -> None:
        for g in gids:
            self._gt_frames[g] += 1
        for h in hids:
            self._hyp_frames[h] += 1
        for i, j in zip(*np.nonzero(valid), strict=True):
            self._overlap[(gids[i], hids[j])] += 1

    def counts(self) -> MotCounts:
        """The counts so far, with IDF1 terms and mostly tracked / lost."""
        out = MotCounts(**asdict(self.counts_so_far))
        gt_list = sorted(self._gt_frames)
        hyp_list = sorted(self._hyp_frames)
        idtp = 0
        if self._overlap:
            g_ix = {g: i for i, g in enumerate(gt_list)}
            h_ix = {h: j for j, h in enumerate(hyp_list)}
            weight = np.full((len(gt_list), len(hyp_list)), np.nan)
            for (g, h), n in self._overlap.items():
                weight[g_ix[g], h_ix[h]] = n
            # With cost (top - overlap) and a cap of top, an unpaired row or column
            # costs top / 2, so the capped solver's total is a constant minus the
            # summed overlap: it finds the identity pairing of most overlap frames.
            top = float(np.nanmax(weight)) + 1.0
            rows, cols = match_capped(top - weight, top)
            idtp = int(weight[rows, cols].sum())
        out.idtp = idtp
        out.idfn = out.gt - idtp
        out.idfp = out.hyp - idtp
        out.gt_tracks = len(gt_list)
        ratios = [self._gt_matched[g] / self._gt_frames[g] for g in gt_list]
        out.mostly_tracked = sum(r >= 0.8 for r in ratios)
        out.mostly_lost = sum(r < 0.2 for r in ratios)
        return out


IGNORED_ROWS = ("drop", "dont-care")


def forgive_dont_care(gt: MotTable, hyp: MotTable) -> tuple[MotTable, MotTable]:
    """(counted ground truth, hypotheses) with the hypotheses on don't-care rows removed.

    ``gt`` holds every row; those with ``conf < 1`` are don't-care (in the
    rendered sequences, a person less than ``min_visibility`` in view). Per
    frame, hypotheses are first paired with the counted rows (IoU >= 0.5,
    most pairs); a hypothesis left over that overlaps a don't-care row as
    much is dropped, so reporting a barely visible person is neither credited
    nor charged (the MOT16 devkit's treatment of ignored boxes). Missing one
    costs nothing either: the don't-care rows are not in the counted truth.
    """
    counted = gt.select(gt.conf >= 1)
    ignored = gt.select(gt.conf < 1)
    if not len(ignored) or not len(hyp):
        return counted, hyp
    keep = np.ones(len(hyp), dtype=bool)
    counted_by, ignored_by = counted.by_frame(), ignored.by_frame()
    none = np.zeros(0, dtype=np.intp)
    for f, hi in hyp.by_frame().items():
        ii = ignored_by.get(f, none)
        if not len(ii):
            continue
        h = hyp.xyxy[hi]
        paired = np.zeros(len(hi), dtype=bool)
        gi = counted_by.get(f, none)
        if len(gi):
            cost = 1.0 - iou_xyxy(h, counted.xyxy[gi])
            rows, _ = match_capped(cost, 1 - IOU_MATCH)
            paired[rows] = True
        over_ignored = (iou_xyxy(h, ignored.xyxy[ii]) >= IOU_MATCH).any(axis=1)
        keep[hi[~paired & over_ignored]] = False
    return counted, hyp.select(keep)


def evaluate(gt: MotTable, hyp: MotTable, length_frames: int | None = None) -> MotCounts:
    """Score hypothesis rows against ground-truth rows over every frame."""
    gt_by, hyp_by = gt.by_frame(), hyp.by_frame()
    last = max([*gt_by, *hyp_by, length_frames or 0, 0])
    gt_xyxy, hyp_xyxy = gt.xyxy, hyp.xyxy
    acc = ClearMotAccumulator()
    none = np.zeros(0, dtype=np.intp)
    for f in range(1, last + 1):
        gi, hi = gt_by.get(f, none), hyp_by.get(f, none)
        acc.update(gt.track_id[gi], gt_xyxy[gi], hyp.track_id[hi], hyp_xyxy[hi])
    return acc.counts()


# ---------------------------------------------------------------- running a tracker


def _frames(det: MotTable, length_frames: int) -> Iterator[tuple[int, Detections]]:
    by = det.by_frame()
    xyxy = det.xyxy
    for f in range(1, length_frames + 1):
        rows = by.get(f)
        if rows is None:
            yield f, Detections.empty()
        else:
            yield (
                f,
                Detections.from_arrays(
                    xyxy[rows], np.clip(det.conf[rows], 0, 1), np.zeros(len(rows))
                ),
            )


def track_sequence(det: MotTable, info: SeqInfo, settings: TrackerSettings) -> MotTable:
    """Run a fresh :class:`Tracker` over a sequence's detections; MOT rows out."""
    tracker = Tracker(settings, frame_rate_hz=info.frame_rate_hz)
    frames: list[int] = []
    ids: list[int] = []
    boxes: list[np.ndarray] = []
    confs: list[float] = []
    for f, dets in _frames(det, info.length_frames):
        for t in tracker.update(dets):
            frames.append(f)
            ids.append(t.track_id)
            boxes.append(t.xyxy)
            confs.append(t.score)
    xyxy = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return MotTable(
        frame=np.asarray(frames, dtype=np.int64),
        track_id=np.asarray(ids, dtype=np.int64),
        xywh=np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1),
        conf=np.asarray(confs, dtype=np.float64),
    )


def without_reidentification(gt: MotTable, gap_frames: int) -> MotTable:
    """The ground truth as a perfect tracker that cannot re-identify would report it.

    Each person gets a new id whenever they were out of the (counted) ground
    truth for more than ``gap_frames`` frames: out of view longer than the
    tracker remembers a lost track. Scoring this against the ground truth
    gives the highest IDF1 any such tracker can reach on the sequence.
    """
    ids = gt.track_id.copy()
    for person in np.unique(gt.track_id):
        rows = np.flatnonzero(gt.track_id == person)
        rows = rows[np.argsort(gt.frame[rows], kind="stable")]
        segment = np.concatenate([[0], np.cumsum(np.diff(gt.frame[rows]) > gap_frames)])
        ids[rows] = person * 100_000 + segment
    return MotTable(gt.frame, ids, gt.xywh, gt.conf)


def detect_sequence(sequence_dir: Path, detector: FrameDetector) -> MotTable:
    """Run ``detector`` over a sequence's frames (img1/ or a video): det.txt rows out.

    Class 0 is taken as the person class, as in every person model here.
    """
    frames: list[int] = []
    boxes: list[np.ndarray] = []
    confs: list[np.ndarray] = []
    for number, image in iter_frames(Path(sequence_dir), None):
        (dets,) = detector.detect([image])
        keep = dets.class_id == 0
        frames.extend([number] * int(keep.sum()))
        boxes.append(np.asarray(dets.xyxy[keep], np.float64).reshape(-1, 4))
        confs.append(np.asarray(dets.score[keep], np.float64))
    xyxy = np.concatenate(boxes) if boxes else np.zeros((0, 4))
    return MotTable(
        frame=np.asarray(frames, dtype=np.int64),
        track_id=np.full(len(frames), -1, dtype=np.int64),
        xywh=np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1),
        conf=np.concatenate(confs) if confs else np.zeros(0),
    )


def run_eval_mot(
    root: Path,
    sequences: list[str] | None = None,
    settings: TrackerSettings | None = None,
    detector: FrameDetector | None = None,
    ignored_rows: str = "drop",
) -> dict[str, Any]:
    """Track and score MOTChallenge sequences under ``root``.

    ``ignored_rows`` says how ground-truth rows with conf 0 count: ``drop``
    removes them, so a hypothesis on one is a false positive (py-motmetrics'
    ``min_confidence=1``, how the public mot15 figures are scored);
    ``dont-care`` also removes the hypotheses on them (``forgive_dont_care``).

    Each sequence folder holds ``seqinfo.ini``, ``det/det.txt`` and
    ``gt/gt.txt``. ``sequences`` None means every such folder, sorted by name.
    Returns ``{"settings": {...}, "sequences": {name: metrics}, "overall":
    metrics}``, where ``overall`` sums the counts of every sequence (as
    py-motmetrics' overall row) and metrics are :meth:`MotCounts.as_dict`, plus
    ``idf1_ceiling_no_reid``: the IDF1 of ``without_reidentification`` at the
    tracker's memory, the most a tracker without re-identification can score.
    """
    root = Path(root)
    settings = settings or TrackerSettings()
    if ignored_rows not in IGNORED_ROWS:
        raise ValueError(f"ignored_rows must be one of {IGNORED_ROWS}, got {ignored_rows!r}")
    if sequences is None:
        sequences = sorted(p.name for p in root.iterdir() if (p / "seqinfo.ini").is_file())
    if not sequences:
        raise FileNotFoundError(f"no MOT sequences (folders with seqinfo.ini) under {root}")
    per_seq: dict[str, dict[str, float | int]] = {}
    total = ceiling_total = MotCounts()
    for name in sequences:
        seq_dir = root / name
        if not (seq_dir / "seqinfo.ini").is_file():
            raise FileNotFoundError(f"sequence {name!r}: {seq_dir / 'seqinfo.ini'} not found")
        info = read_seqinfo(seq_dir / "seqinfo.ini")
        det = (
            read_mot_text(seq_dir / "det" / "det.txt")
            if detector is None
            else detect_sequence(seq_dir, detector)
        )
        gt = read_mot_text(seq_dir / "gt" / "gt.txt")
        hyp = track_sequence(det, info, settings)
        if ignored_rows == "dont-care":
            gt, hyp = forgive_dont_care(gt, hyp)
        else:
            gt = gt.select(gt.conf >= 1)
        counts = evaluate(gt, hyp, info.length_frames)
        log.info("eval-mot %s MOTA %.3f IDF1 %.3f", name, counts.mota, counts.idf1)
        remembers = Tracker(settings, frame_rate_hz=info.frame_rate_hz).max_age_frames
        ceiling = evaluate(gt, without_reidentification(gt, remembers), info.length_frames)
        per_seq[name] = {**counts.as_dict(), "idf1_ceiling_no_reid": round(ceiling.idf1, 4)}
        total = total + counts
        ceiling_total = ceiling_total + ceiling
    return {
        "settings": settings.model_dump(),
        "detections": "det/det.txt" if detector is None else "detector run on the frames",
        "ignored_rows": ignored_rows,
        "sequences": per_seq,
        "overall": {**total.as_dict(), "idf1_ceiling_no_reid": round(ceiling_total.idf1, 4)},
    }
