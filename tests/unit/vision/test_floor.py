"""Projection of person boxes to the floor, and fusion into store-level tracks.

Truth comes from people walking known paths under the demo store's ceiling
cameras (see ``test_floor_synth``). The floor-error bound: at f = 200 px and
2.3 m from the camera to the 1.1 m plane, 2 px of box noise is 0.02 m; a
person 0.1 m taller or shorter than assumed, 3 m from the nadir, shifts the
point by about 0.13 m; so an RMS of 0.3 m leaves room for cut boxes at
image borders and the filter's lag, yet fails if projection goes wrong
(casting the box centre on the floor instead is off by up to ~1.5 m).
"""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from test_floor_looks import BLUE, RED
from test_floor_synth import (
    T0,
    FloorScorer,
    Walker,
    demo_store,
    frame_detections,
    line_walk,
    person_box,
)

from iot.store import Store
from vision.ceiling import CeilingTracker
from vision.floor import CameraObservation, FloorFusion, FloorSettings, FloorUpdate, project_boxes

STORE = demo_store()
CAMS = {c.id: c for c in STORE.devices.cameras if c.kind == "ceiling"}


def run(
    walkers: list[Walker], seconds: float, seed: int = 0, store: Store = STORE
) -> tuple[FloorScorer, list[FloorUpdate]]:
    rng = np.random.default_rng(seed)
    tracker = CeilingTracker(store)
    scorer = FloorScorer(0.5)
    updates = []
    for k in range(round(seconds * 10)):
        dets, truth = frame_detections(store, walkers, k / 10, rng)
        up = tracker.step(T0 + k / 10, dets)
        updates.append(up)
        scorer.update(truth, {t.track_id: (t.x_m, t.y_m) for t in up.tracks})
    return scorer, updates


def ids_seen(updates: list[FloorUpdate]) -> set[str]:
    return {t.track_id for u in updates for t in u.tracks}


# --- projection ---


@pytest.mark.parametrize("cam_id", ["cam-ceil-01", "cam-ceil-06"])
def test_projection_error_is_small_over_the_whole_view(cam_id: str) -> None:
    cam = CAMS[cam_id]
    rng = np.random.default_rng(3)
    truth, boxes = [], []
    for _ in range(400):
        x, y = np.asarray(cam.position_m[:2]) + rng.uniform(-4.5, 4.5, 2)
        box = person_box(cam, x, y, float(rng.uniform(1.6, 1.8)))
        if box is not None:
            truth.append((x, y))
            boxes.append(box)
    xy, sigma = project_boxes(cam, np.array(boxes), FloorSettings())
    err = np.linalg.norm(xy - np.array(truth), axis=1)
    assert len(boxes) > 100
    assert np.sqrt(np.mean(err**2)) < 0.15
    # The stated uncertainty covers the error (a 3-sigma check, per box).
    assert (err < 3 * sigma).mean() > 0.95


def test_casting_the_box_centre_on_the_floor_would_be_wrong() -> None:
    # Guards the plane height: the same boxes cast at 0 m are far off.
    cam = CAMS["cam-ceil-02"]
    x, y = cam.position_m[0] + 1.5, cam.position_m[1] + 2.0
    box = person_box(cam, x, y)
    assert box is not None
    good, _ = project_boxes(cam, box[None], FloorSettings())
    bad, _ = project_boxes(cam, box[None], FloorSettings(person_plane_height_m=0.0))
    assert np.hypot(*(good[0] - (x, y))) < 0.15 < np.hypot(*(bad[0] - (x, y)))


def test_uncertainty_grows_towards_the_image_edges() -> None:
    cam = CAMS["cam-ceil-02"]
    settings = FloorSettings()
    boxes = [
        person_box(cam, cam.position_m[0] + dx, cam.position_m[1]) for dx in (0, 0.7, 1.4, 2.5)
    ]
    assert all(b is not None for b in boxes)
    arr = np.array(boxes)
    cut = (arr[:, :2] <= 0).any(axis=1) | (arr[:, 2:] >= (cam.width_px, cam.height_px)).any(axis=1)
    assert cut.tolist() == [False, False, False, True]
    _, sigma = project_boxes(cam, arr, settings)
    assert np.all(np.diff(sigma) > 0)
    assert sigma[3] > settings.border_sigma_m > sigma[2] - sigma[0]


def test_settings_refuse_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="gate_metres"):
        FloorSettings(gate_metres=1.0)  # type: ignore[call-arg]


# --- fusion ---


def test_one_walker_across_many_cameras_keeps_one_id() -> None:
    # Diagonal walk under cameras 01, 02, 06, 07, 03, 04 and their overlaps.
    scorer, updates = run([Walker(1, line_walk((1.8, 0.0), (15.0, 12.0), 0.0))], 17)
    s = scorer.score()
    assert len(ids_seen(updates)) == 1
    assert s.switches == 0
    assert s.misses <= 3  # only while the first frames confirm the track
    assert s.rms_m < 0.3


def test_crossing_paths_do_not_swap_ids() -> None:
    walkers = [
        Walker(1, line_walk((1.0, 6.5), (15.0, 6.5), 0.0)),
        Walker(2, line_walk((8.0, 1.0), (8.0, 12.0), 0.0)),
        Walker(3, line_walk((13.0, 1.5), (3.0, 11.5), 0.0)),
    ]
    scorer, updates = run(walkers, 12, seed=4)
    s = scorer.score()
    assert s.switches == 0
    assert len(ids_seen(updates)) == 3
    assert s.idf1 > 0.9
    assert s.rms_m < 0.3


def test_short_occlusion_is_bridged() -> None:
    walkers = [Walker(1, line_walk((1.0, 3.5), (15.0, 3.5), 0.0), hidden=(4.0, 5.2))]
    _, updates = run(walkers, 12, seed=2)
    assert len(ids_seen(updates)) == 1
    assert not any(u.ended for u in updates if u.time_s < T0 + 11.6)  # ends once gone
    # Nothing is reported for long while hidden: coasting is capped.
    hidden = [u for u in updates if T0 + 4.0 <= u.time_s <= T0 + 5.2]
    assert sum(1 for u in hidden if u.tracks) < len(hidden)


def test_long_occlusion_ends_the_track() -> None:
    walkers = [Walker(1, line_walk((1.0, 3.5), (15.0, 3.5), 0.0), hidden=(3.0, 7.0))]
    _, updates = run(walkers, 11, seed=2)
    assert len(ids_seen(updates)) == 2
    assert len([i for u in updates for i in u.ended]) >= 1


def test_entry_born_tracks_are_flagged() -> None:
    gate = STORE.gates("entry")[0]
    cx, cy = gate.centre_m
    walkers = [
        Walker(1, line_walk((cx, cy - 0.3), (cx, cy + 5.0), 0.0)),
        Walker(2, line_walk((9.0, 6.0), (12.0, 9.0), 0.0)),  # appears mid-store
    ]
    rng = np.random.default_rng(5)
    tracker = CeilingTracker(STORE)
    flags: dict[tuple[float, float], bool] = {}
    for k in range(20):
        dets, _ = frame_detections(STORE, walkers, k / 10, rng)
        for t in tracker.step(T0 + k / 10, dets).tracks:
            flags.setdefault((round(t.x_m), round(t.y_m)), t.born_at_entry)
    by_entry = {abs(k[0] - cx) < 1.5 and k[1] < 3: v for k, v in flags.items()}
    assert by_entry == {True: True, False: False}


def test_leaving_through_the_exit_ends_the_track_quickly() -> None:
    gate = STORE.gates("exit")[0]
    cx, cy = gate.centre_m
    walkers = [Walker(1, line_walk((cx, cy + 5.0), (cx, cy - 0.3), 0.0))]
    _, updates = run(walkers, 8, seed=6)
    gone_s = 5.3 / 1.2
    ended = [u.time_s - T0 for u in updates if u.ended]
    assert len(ended) == 1
    assert gone_s < ended[0] < gone_s + FloorSettings().max_coast_s


def test_fusion_refuses_time_going_back() -> None:
    fusion = FloorFusion(STORE)
    fusion.update(T0 + 1.0, [CameraObservation("cam-ceil-01", 1, 2.0, 3.0, 0.1)])
    with pytest.raises(ValueError, match="back in time"):
        fusion.update(T0 + 0.5, [])


def test_two_cameras_seeing_one_person_make_one_track() -> None:
    fusion = FloorFusion(STORE, FloorSettings(confirm_hits=1))
    up = fusion.update(
        T0,
        [
            CameraObservation("cam-ceil-01", 1, 4.0, 3.5, 0.2),
            CameraObservation("cam-ceil-02", 7, 4.3, 3.4, 0.2),
            CameraObservation("cam-ceil-02", 8, 9.0, 3.4, 0.2),
        ],
    )
    assert sorted(round(t.x_m) for t in up.tracks) == [4, 9]


def test_longer_twin_run_scores_well() -> None:
    """Visits of the normal scenario (two minutes), scored on the floor at 0.5 m."""
    from sim.scenario import load_scenario
    from sim.twin import Twin

    twin = Twin(STORE, load_scenario("scenarios/normal.yaml"))
    walkers = []
    for v in twin.visits:

        def where(t: float, v=v) -> tuple[float, float] | None:  # type: ignore[no-untyped-def]
            at = twin.start_s + t
            if not v.track_start_s <= at <= v.track_end_s:
                return None
            xs, ys = v.position(np.array([at]))
            return float(xs[0]), float(ys[0])

        walkers.append(Walker(v.index, where, 1.6 + 0.2 * (v.index % 5) / 4))
    scorer, _ = run(walkers, 120, seed=11)
    s = scorer.score()
    assert s.gt > 500
    assert s.mota > 0.9
    assert s.idf1 > 0.9
    assert s.rms_m < 0.3


# two shoppers who came in together stand 0.9 m apart just inside the entry
X, YA, YB = 1.8, 1.3, 0.4


def standing_pair(settings: FloorSettings) -> list[FloorUpdate]:
    """A (red) and B (blue) stand still for 6 s.

    Camera ``a`` sees A alone; camera ``b`` sees both at first, then (after
    1 s) loses B's box, and its id for A slides onto B while the box still
    shows A's clothes: a camera tracker's common failure when one body hides
    the other. Every observation is sharp (0.1 m), so the two cameras
    plainly place two different people.
    """
    fusion = FloorFusion(STORE, settings)
    updates = []
    for k in range(60):
        obs = [CameraObservation("a", 1, X, YA, 0.1, RED)]
        if k < 10:
            obs.append(CameraObservation("b", 1, X, YB, 0.1, BLUE))
            obs.append(CameraObservation("b", 2, X, YA, 0.1, RED))
        else:
            obs.append(CameraObservation("b", 2, X, YB, 0.1, RED))
        updates.append(fusion.update(T0 + k * 0.1, obs))
    return updates


def near(update: FloorUpdate, y: float) -> list[str]:
    return [t.track_id for t in update.tracks if abs(t.y_m - y) < 0.2 and abs(t.x_m - X) < 0.2]


def test_a_camera_id_that_slides_onto_a_neighbour_feeds_the_neighbours_track() -> None:
    updates = standing_pair(FloorSettings())
    a_id, b_id = near(updates[9], YA), near(updates[9], YB)
    assert len(a_id) == 1 and len(b_id) == 1 and a_id != b_id
    last = updates[-1]
    assert near(last, YA) == a_id and near(last, YB) == b_id
    assert not any(u.ended for u in updates)


def test_without_the_split_the_track_sits_between_the_two_and_the_neighbour_is_lost() -> None:
    updates = standing_pair(FloorSettings(split_m=0.0))
    b_id = near(updates[9], YB)
    last = updates[-1]
    assert near(last, YB) == [] and near(last, YA) == []  # one track, halfway
    assert b_id[0] in [i for u in updates for i in u.ended]


def test_two_cameras_placing_one_person_apart_do_not_start_a_second_track() -> None:
    fusion = FloorFusion(STORE)
    for k in range(30):  # a reaching arm stretches one camera's box: 0.8 m between the two
        up = fusion.update(
            T0 + k * 0.1,
            [
                CameraObservation("a", 1, 5.0, 6.0, 0.1),
                CameraObservation("b", 1, 5.0, 6.8, 0.1),
            ],
        )
    assert len(up.tracks) == 1 and not up.ended
