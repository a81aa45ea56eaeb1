"""Settings of the floor fusion (``vision.floor``), each with its unit and why it is what it is."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FloorSettings"]


class FloorSettings(BaseModel):
    """Projection and fusion settings, each with its unit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    person_plane_height_m: float = Field(
        default=1.1,
        ge=0,
        le=2.5,
        description="Height of the plane the box centre is cast onto (see the module notes).",
    )
    pixel_sigma_px: float = Field(
        default=4.0, gt=0, description="Uncertainty of a box centre in pixels."
    )
    height_sigma_m: float = Field(
        default=0.1,
        ge=0,
        description="Spread of people's heights; makes the radial error grow "
        "with the distance from the camera.",
    )
    border_margin_px: float = Field(
        default=2.0, ge=0, description="A box this close to the image border counts as cut."
    )
    border_sigma_m: float = Field(
        default=0.2, ge=0, description="Extra uncertainty of a box cut by the image border."
    )
    near_edge_height_m: float = Field(
        default=0.0,
        ge=0,
        le=2.5,
        description="Height of the plane a cut box's edge nearest the nadir is cast onto.",
    )
    body_radius_m: float = Field(
        default=0.15,
        ge=0,
        le=1,
        description="From a body's near edge to its centre, seen from above.",
    )
    accel_sigma_m_s2: float = Field(
        default=1.5, gt=0, description="Kalman process noise: random acceleration."
    )
    init_speed_sigma_m_s: float = Field(
        default=1.0, gt=0, description="Uncertainty of a new track's velocity."
    )
    gate_m: float = Field(
        default=1.0, gt=0, description="Largest floor distance to pair an observation and a track."
    )
    sticky_gate_m: float = Field(
        default=1.5,
        gt=0,
        description="A camera-local id keeps feeding its store track while within this distance.",
    )
    sticky_bonus_m: float = Field(
        default=0.0,
        ge=0,
        description="Cost discount for a camera-local id staying with its store track. 0 by "
        "default: a camera's own id swap between two close shoppers would be carried into "
        "the store tracks (measured: IDF1 0.635 -> 0.699 on busy seed 101 with 0.3 -> 0).",
    )
    coast_gate_growth_m_per_s: float = Field(
        default=0.8, ge=0, description="How fast the gate widens while a track goes unseen."
    )
    max_gate_m: float = Field(default=2.5, gt=0, description="The widest gate, m.")
    max_coast_s: float = Field(
        default=2.5, gt=0, description="A track unseen this long ends (bridges short occlusions)."
    )
    report_coast_s: float = Field(
        default=1.0,
        ge=0,
        description="A coasting track is reported at its predicted position this long; "
        "after that it stays alive, unreported, until max_coast_s.",
    )
    coast_damping_per_s: float = Field(
        default=1.0,
        ge=0,
        description="Velocity decay rate while coasting, so a lost track does not drift far.",
    )
    confirm_hits: int = Field(
        default=2, ge=1, description="Frames with observations before a new track is reported."
    )
    entry_radius_m: float = Field(
        default=1.2, gt=0, description="A track born this close to an entry gate line is flagged."
    )
    exit_radius_m: float = Field(
        default=1.0, gt=0, description="A track lost this close to an exit gate line..."
    )
    exit_coast_s: float = Field(
        default=0.3, ge=0, description="...ends after this long unseen, not after max_coast_s."
    )
    look_weight_m: float = Field(
        default=2.5,
        ge=0,
        description="Association cost of a complete colour mismatch, in metres of distance "
        "(vision/appearance.py): keeps two people who pass close on their own tracks.",
    )
    look_memory: float = Field(
        default=0.95,
        ge=0,
        lt=1,
        description="Weight of a track's remembered look against a new observation's.",
    )
    look_clear_m: float = Field(
        default=1.0,
        ge=0,
        description="A track learns its look only when no other track is this close "
        "(a box of two people would teach it the wrong colours).",
    )
    anchor_looks: int = Field(
        default=10,
        ge=0,
        description="A track's identity look is the mean of its first this many clear looks, "
        "then frozen: who the track is, against what it looks like now. 0 turns swap "
        "repair off.",
    )
    anchor_gate_m: float = Field(
        default=1.5,
        ge=0,
        description="No anchor looks this close to a gate line (its floor marking shows in "
        "the box).",
    )
    recent_looks: int = Field(
        default=3,
        ge=1,
        description="Clear looks since the last crowding before a track's current look counts.",
    )
    encounter_m: float = Field(
        default=1.2,
        ge=0,
        description="Two tracks that came this close may have swapped people...",
    )
    encounter_s: float = Field(
        default=15.0, ge=0, description="...and are checked for a swap this long after."
    )
    swap_margin: float = Field(
        default=0.15,
        ge=0,
        description="Swapped identities must explain the current looks better than kept ones "
        "by this much (summed look distance) before a swap is repaired.",
    )
    revive_s: float = Field(
        default=20.0,
        ge=0,
        description="A track lost in the store (not at an exit) is remembered this long: a "
        "new track away from the entry that looks like it and could have walked there "
        "takes its id back. 0 turns this off.",
    )
    revive_look: float = Field(
        default=0.15,
        ge=0,
        le=1,
        description="Largest look distance between a new track and a lost one it revives.",
    )
    revive_speed_m_s: float = Field(
        default=1.5, gt=0, description="How far a lost shopper may have walked, per second."
    )
    merge_m: float = Field(
        default=0.15,
        gt=0,
        description="Two tracks closer than this for merge_s are one person. Shoppers brush "
        "past each other closer than a shoulder width; only a duplicate of one person (two "
        "cameras' views not yet associated) stays this close.",
    )
    merge_s: float = Field(default=0.6, ge=0, description="See merge_m.")
    split_m: float = Field(
        default=0.5,
        ge=0,
        description="Two cameras' observations given to one track that lie further apart than "
        "this, and than split_sigmas of their combined uncertainty, are two people: the one "
        "further from the track's prediction is taken from it (a camera tracker that slid "
        "from one person onto a neighbour would otherwise drag the track between them). "
        "0 turns this off.",
    )
    split_sigmas: float = Field(default=3.0, ge=0, description="See split_m.")
    id_prefix: str = Field(
        default="ct-", pattern=r"^[A-Za-z0-9._:-]*$", description="Prefix of store track ids."
    )
