"""Settings of the store brain: every threshold a named, described field with units."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["BrainSettings"]


class BrainSettings(BaseModel):
    """Tuning of sessions, fusion and receipts. Checked once, at construction."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- timing ---
    attribution_delay_s: float = Field(
        default=0.3,
        ge=0,
        le=30,
        description="A shelf event (and an exit) is decided only once event time has passed its "
        "time by this much, so the tracks covering it have arrived.",
    )
    receipt_grace_s: float = Field(
        default=0.5,
        ge=0,
        le=120,
        description="A receipt is issued this long after the exit, once no shelf event that "
        "started before the exit is still pending.",
    )
    attribution_lead_s: float = Field(
        default=0.5,
        ge=0,
        le=10,
        description="Track positions are averaged from this long before the shelf event started.",
    )
    attribution_hold_s: float = Field(
        default=1.5,
        gt=0,
        le=30,
        description="Track positions are averaged until at most this long after the shelf event "
        "started: the hand is at the shelf when the plate starts to move, but the shopper may "
        "walk off before it settles.",
    )
    position_gap_s: float = Field(
        default=1.0,
        gt=0,
        le=10,
        description="If a track has no sample in a window, the nearest sample at most this far "
        "outside it is used instead.",
    )
    # --- sessions ---
    bind_window_s: float = Field(
        default=3.0,
        gt=0,
        le=60,
        description="A track binds to a scan-in if first seen within this many seconds of it.",
    )
    bind_radius_m: float = Field(
        default=1.5,
        gt=0,
        le=20,
        description="A track binds to a scan-in only if first seen this close to the entry gate "
        "centre.",
    )
    late_bind_s: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="A scan-in no entry track was bound to (it walked in in the shadow of "
        "another shopper) binds, flagged for review, to a new track first seen within this "
        "long after the scan-in beside the track of a shopper who scanned in with it. 0 "
        "turns this off.",
    )
    stitch_window_s: float = Field(
        default=10.0,
        ge=0,
        le=120,
        description="A new track away from the entry continues a bound track last seen at most "
        "this long before it (a camera lost the shopper: occlusion, a blind spot, a miss).",
    )
    stitch_radius_m: float = Field(
        default=1.0,
        ge=0,
        le=20,
        description="... and first seen this close to where the lost track was last seen, "
        "plus stitch_speed_m_s for every second between the two.",
    )
    stitch_speed_m_s: float = Field(
        default=1.5,
        ge=0,
        le=5,
        description="Walking speed allowed for the gap between a lost track and its successor.",
    )
    interaction_slack_s: float = Field(
        default=1.0,
        ge=0,
        le=10,
        description="A shelf camera's interaction explains a shelf event if their event-time "
        "spans overlap, give or take this much.",
    )
    sighting_wait_s: float = Field(
        default=3.0,
        ge=0,
        le=30,
        description="A shelf event on a gondola whose shelf camera is online waits at most this "
        "long past its settle time for the camera's episode: a hand that lingers in the shelf "
        "closes its episode after the weight has settled.",
    )
    hand_reach_m: float = Field(
        default=0.8,
        gt=0,
        le=3,
        description="With a camera sighting, the shopper charged is the one whose track was "
        "nearest the arm's floor position, within this distance.",
    )
    exit_radius_m: float = Field(
        default=2.0,
        gt=0,
        le=20,
        description="An exit closes the session whose track is nearest the exit gate line, "
        "if no farther than this.",
    )
    # --- attribution ---
    reach_margin_m: float = Field(
        default=0.15,
        ge=0,
        le=2,
        description="Added to the store's reach_m to allow for positioning noise.",
    )
    sure_margin_m: float = Field(
        default=0.25,
        gt=0,
        le=5,
        description="With several shoppers in reach, a lead over the runner-up this large gives "
        "full attribution confidence; at zero lead it is 0.5.",
    )
    walking_penalty_s: float = Field(
        default=0.6,
        ge=0,
        le=10,
        description="Attribution treats a shopper moving at v m/s as this many seconds times v "
        "further from the plate: the one reaching stands still, passers-by keep walking.",
    )
    single_candidate_confidence: float = Field(
        default=0.97,
        ge=0,
        le=1,
        description="Attribution confidence when only one shopper is in reach.",
    )
    # --- who by look (checkout/looks.py) ---
    look_attribution: bool = Field(
        default=True,
        description="Check who stood at the hand by look against each visit's enrolled look "
        "(needs tracks that carry looks; without them attribution is by position alone).",
    )
    enrol_looks: int = Field(
        default=8,
        ge=1,
        le=100,
        description="A visit's look is the mean of at most this many clear looks of the track "
        "bound to it at the entry...",
    )
    enrol_min_looks: int = Field(
        default=3, ge=1, le=100, description="...and it has a look only with at least this many..."
    )
    enrol_window_s: float = Field(
        default=15.0,
        gt=0,
        le=600,
        description="...taken within this long of the scan-in (later, the track may have slid "
        "onto someone else).",
    )
    look_window_s: float = Field(
        default=4.0,
        ge=0,
        le=60,
        description="The look of the track at the hand is taken from its clear looks at most "
        "this long before or after the shelf event.",
    )
    look_samples: int = Field(
        default=5, ge=1, le=100, description="...the ones nearest the event, at most this many."
    )
    look_keep_prior: float = Field(
        default=0.9,
        gt=0,
        lt=1,
        description="Belief, before looks are weighed, that the track at the hand is the visit "
        "it is bound to; the rest is shared by the other visits in the store.",
    )
    look_strong_odds: float = Field(
        default=10.0,
        ge=1,
        description="Looks name another visit only on positive evidence: its own look fits "
        "the person this many times likelier than a stranger's would, or (a visit with no "
        "learnt look) the track's own visit fits this many times less likely.",
    )
    look_min_belief: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Looks take an act from the track's own visit only for a visit they make "
        "at least this likely.",
    )
    look_rebind: bool = Field(
        default=False,
        description="Move camera tracks to the visit their looks fit (checkout/identity.py). "
        "Off: on busy seed 101 it cost receipts (0.867 -> 0.850) and changed nothing on seed "
        "23; a visit's enrolled look is not yet clean enough to move whole tracks on.",
    )
    rebind_looks: int = Field(
        default=3,
        ge=1,
        le=50,
        description="A camera track is moved to the visit it looks like on the mean of its "
        "last this many clear looks...",
    )
    rebind_window_s: float = Field(
        default=3.0, gt=0, le=60, description="...sent within this many seconds..."
    )
    rebind_hold_s: float = Field(
        default=5.0,
        ge=0,
        le=600,
        description="...and at most once in this many seconds (evidence must build up again).",
    )
    # --- weight interpretation ---
    weight_floor_sigma_g: float = Field(
        default=2.0,
        gt=0,
        le=1000,
        description="Weight uncertainty added to unit tolerance and load-cell noise, g (1 sigma).",
    )
    fit_ok_z: float = Field(
        default=2.5,
        gt=0,
        le=20,
        description="A weight fit within this many sigmas is a confident fit.",
    )
    fit_max_z: float = Field(
        default=4.0,
        gt=0,
        le=50,
        description="A weight fit beyond this many sigmas does not fit at all.",
    )
    wrong_plate_prior: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Prior odds that a put-back goes to a plate other than its SKU's own. With "
        "near-equal weights in one cart this keeps the choice unsure enough to be reviewed.",
    )
    foreign_prior: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="Prior odds that a pick takes a foreign unit left on the plate rather than "
        "the plate's own SKU (own units far outnumber strays); the weight must overcome it.",
    )
    shared_plate_separation: float = Field(
        default=10.0,
        ge=1,
        le=1e6,
        description="On a plate stocking several SKUs, the weight names the chosen one only if "
        "its fit is this many times likelier than that of every other SKU of the plate; "
        "otherwise the facings (or the cart) chose and the line is capped at "
        "shared_plate_tie_confidence.",
    )
    shared_plate_tie_confidence: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Highest SKU confidence of a line whose SKU the weight could not tell from "
        "another SKU of the same plate (flavours or colours of equal weight). Below "
        "review_below, so such a visit is reviewed rather than silently guessed.",
    )
    # --- review ---
    review_below: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="A cart line below this confidence flags the visit for review.",
    )
    max_future_s: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="Events stamped more than this ahead of the clock the brain is ticked with "
        "are refused (a device clock running ahead), s.",
    )
    # --- memory ---
    track_retention_s: float = Field(
        default=120.0,
        gt=0,
        le=86_400,
        description="Track samples older than this (event time) are dropped.",
    )
    closed_retention_s: float = Field(
        default=600.0,
        gt=0,
        le=86_400,
        description="Receipted sessions stay in memory this long, to refuse late events clearly.",
    )

    @model_validator(mode="after")
    def _ties_are_reviewed(self) -> BrainSettings:
        if self.review_below > 0 and self.shared_plate_tie_confidence >= self.review_below:
            raise ValueError(
                f"shared_plate_tie_confidence {self.shared_plate_tie_confidence} is not below "
                f"review_below {self.review_below}: a guess between equal-weight SKUs on one "
                "plate would go unreviewed; lower shared_plate_tie_confidence"
            )
        return self
