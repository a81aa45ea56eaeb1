"""What the floor fusion did around one moment: tracks, who fed them, whose look they carry.

``python -m smartstore.fusion_replay window REC T0 T1 --people trk-51,trk-52``
replays a ceiling recording and, for each frame set between T0 and T1
(seconds after the recording's first frame set), prints the chosen true
shoppers' positions and every store track within ``NEAR_M`` of one of them:
its position, how many anchor and recent looks it holds, which camera-local
ids fed it this step, and how far its recent look is from the anchor of each
of those tracks (0 is the same person, 1 a stranger). It is how a swap, a
slide or a merge is read. A diagnostic of the tuning tool, not part of any
service.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from vision.appearance import look_distance
from vision.floor import CameraObservation, FloorFusion

__all__ = ["NEAR_M", "Anchors", "describe_step"]

NEAR_M = 1.5  # a track this close to a chosen shopper is shown

Anchors = dict[int, np.ndarray]  # store track number -> its finished anchor look


def remember_anchors(fusion: FloorFusion, anchors: Anchors) -> None:
    """Keep each track's anchor once finished (it outlives the track, for comparison)."""
    for t in [*fusion._tracks, *fusion.identity.lost]:
        if t.anchor is not None and t.anchor_n >= fusion.settings.anchor_looks:
            anchors.setdefault(t.number, t.anchor)


def describe_step(
    fusion: FloorFusion,
    rel_s: float,
    observations: Sequence[CameraObservation],
    people: dict[str, tuple[float, float]],
    anchors: Anchors,
) -> str:
    """One line for the step just fused: the shoppers, then the tracks near them."""
    parts = [f"{rel_s:7.1f}"]
    parts += [f"{p}@({x:.2f},{y:.2f})" for p, (x, y) in people.items()]
    shown = [
        t
        for t in fusion._tracks
        if any(math.hypot(t.pos[0] - x, t.pos[1] - y) <= NEAR_M for x, y in people.values())
    ]
    for t in shown:
        fed = [
            f"{o.camera_id}:{o.local_id}"
            for o in observations
            if fusion._owner.get(o.key) == t.number
        ]
        looks = ""
        if t.recent is not None:
            near = [n for n in anchors if n in {u.number for u in shown}]
            looks = " " + " ".join(f"a{n}={look_distance(anchors[n], t.recent):.2f}" for n in near)
        parts.append(
            f"| {fusion.track_name(t.number)} ({t.pos[0]:.2f},{t.pos[1]:.2f}) "
            f"anchor {t.anchor_n} recent {t.recent_n}{looks} fed {fed}"
        )
    lost = [fusion.track_name(t.number) for t in fusion.identity.lost]
    if lost:
        parts.append(f"| lost {lost}")
    return " ".join(parts)
