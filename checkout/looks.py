"""Who is at the shelf, by look: each visit's look from its first moments, weighed at each act.

Track ids say who is where only as long as the cameras never confuse two
shoppers. When two pass shoulder to shoulder, a track can end up on the other
person, or a lost shopper's new track can be stitched to the wrong visit, and
every later pick then goes on the wrong receipt with full confidence. The
edge sends, with each position, the person's look (an appearance vector from
its re-identification model) while the person stands clear of others. So:

- **enrolment**: a visit's look is the mean of the first ``enrol_looks``
  clear looks of the track bound to it at the entry, taken within
  ``enrol_window_s`` of the scan-in (the shopper has just walked in; later
  the track may have slid onto someone else);
- **the act**: the look of the track at the hand, from around the shelf
  event, is weighed against every visit in the store (:func:`identify`). The
  track's own visit starts with ``keep_prior`` of the belief (tracks are
  mostly right); each visit's share is then multiplied by how much likelier
  the look distance is between two looks of one person than of two people
  (:func:`same_person_odds`). A visit with no learnt look keeps its prior
  share: when the look fits neither the track's own visit nor any enrolled
  one, the visit nobody could enrol is the likeliest.

Pure functions and a small record; the brain wires them in.

>>> a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
>>> visits = {"s-a": (a, 1.0), "s-b": (b, 1.0)}
>>> identify(np.array([0.1, 1.0]), "s-a", visits, keep_prior=0.9).session_id
's-b'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Enrolment",
    "Identity",
    "identify",
    "look_distance",
    "mean_look",
    "same_person_odds",
    "whereabouts",
]

# How far apart looks fall (look distance: 1 - cosine), measured with the shipped re-id
# model on busy seed 101 (the tuning draw): the track at the hand against the true
# actor's enrolled look, median 0.11, p90 0.26, p95 0.32; against everyone else in the
# store, p1 0.25, p5 0.55, p10 0.69, median 0.92. Modelled as an exponential for one
# person and a steep power law with a flat floor (look-alikes) for two people.
SAME_SCALE = 0.1
AGREE = 0.25  # two looks this close (about p90 of one person's) are of one shopper
DIFF_POWER = 5.0
DIFF_FLOOR = 0.03


def mean_look(looks: Sequence[np.ndarray]) -> np.ndarray | None:
    """The unit-length mean of looks of one length (None if none)."""
    if not looks:
        return None
    size = len(looks[0])
    same = [v for v in looks if len(v) == size]
    mean = np.mean(same, axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 1e-9 else None


def look_distance(a: np.ndarray, b: np.ndarray) -> float:
    """1 - cosine of two unit looks, in [0, 1]; 1 where they cannot be compared."""
    if len(a) != len(b):
        return 1.0  # looks of two different models say nothing about each other
    return float(min(1.0, max(0.0, 1.0 - float(np.dot(a, b)))))


def same_person_odds(distance: float) -> float:
    """How much likelier a look distance is between one person's looks than two people's.

    >>> same_person_odds(0.1) > 50 and same_person_odds(0.8) < 0.01
    True
    """
    d = min(max(distance, 0.0), 1.0)
    same = math.exp(-d / SAME_SCALE) / SAME_SCALE
    other = (1.0 - DIFF_FLOOR) * DIFF_POWER * d ** (DIFF_POWER - 1.0) + DIFF_FLOOR
    return same / other


@dataclass
class Enrolment:
    """A visit's look, learnt from the track bound to it in its first seconds."""

    track_id: str  # the camera track bound at the entry
    entered_s: float
    looks: list[np.ndarray] = field(default_factory=list)

    def add(self, time_s: float, look: np.ndarray, *, most: int, window_s: float) -> None:
        if len(self.looks) < most and 0.0 <= time_s - self.entered_s <= window_s:
            self.looks.append(look)

    def vector(self, least: int) -> np.ndarray | None:
        """The visit's look, once at least ``least`` clear looks agree on it.

        The mean of the largest group of looks that lie near one another: a
        box that held two shoppers (two who walk in together can be one box
        for a moment, and then one track) gives looks of neither, which the
        shopper's own looks outnumber and which are left out here.
        """
        if len(self.looks) < least:
            return None
        looks = np.stack(self.looks)
        near = (1.0 - looks @ looks.T) <= AGREE
        core = int(np.argmax(near.sum(axis=1)))
        group = looks[near[core]]
        return mean_look(list(group)) if len(group) >= least else None


# Prior weight of a visit (other than the one whose track is at the hand) by what its own
# track is doing: a visit whose own track is on its own shopper elsewhere is accounted for;
# one whose track is lost, or carries someone else's look, is missing and may be at the hand.
ACCOUNTED, UNKNOWN, MISSING = 0.02, 0.3, 1.0


def whereabouts(
    own_look: np.ndarray | None,
    enrolled: np.ndarray | None,
    others: Sequence[np.ndarray],
    *,
    live: bool,
) -> float:
    """Prior weight that a visit is the person at the hand, from its own track elsewhere.

    ``own_look``: the look its own track sent lately (None: none); ``enrolled``:
    the visit's learnt look; ``others``: the other visits' learnt looks; ``live``:
    its track is still seen. A lost track leaves its shopper unaccounted for; a
    track that looks like its visit accounts for it; one that looks clearly like
    somebody else (odds over 10) has slid off its shopper.

    >>> a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    >>> whereabouts(a, a, [b], live=True) < whereabouts(b, a, [b], live=True)
    True
    """
    if not live:
        return MISSING
    if own_look is None:
        return UNKNOWN
    if enrolled is not None and same_person_odds(look_distance(enrolled, own_look)) >= 1.0:
        return ACCOUNTED
    if any(same_person_odds(look_distance(o, own_look)) > 10.0 for o in others):
        return MISSING
    return UNKNOWN


@dataclass(frozen=True)
class Identity:
    """What the looks say of the person at the hand (or the gate)."""

    session_id: str | None  # the likeliest visit
    belief: float  # its share of the belief
    odds: float | None  # its look's same-person odds (None: it has no learnt look)
    credited_odds: float | None  # the same for the visit the track stands for
    reason: str

    def names(self, credited: str | None, min_belief: float, strong_odds: float) -> bool:
        """Should the act go to ``session_id`` instead of ``credited``?

        Only on the belief *and* on positive evidence: the named visit's own look
        fits clearly, or (a visit nobody could enrol) the credited visit's look
        clearly does not fit the person. A look that fits nobody changes nothing.
        """
        if self.session_id is None or self.session_id == credited:
            return False
        if self.belief < min_belief:
            return False
        if self.odds is not None:
            return self.odds >= strong_odds
        return self.credited_odds is not None and self.credited_odds <= 1.0 / strong_odds


def identify(
    look: np.ndarray,
    credited: str | None,
    visits: Mapping[str, tuple[np.ndarray | None, float]],
    *,
    keep_prior: float,
) -> Identity:
    """The likeliest visit of the person with ``look`` at the shelf, and the evidence.

    ``credited``: the visit the track at the hand is bound to (None: unbound).
    ``visits``: every visit in the store then -> (its learnt look or None, its
    prior weight from :func:`whereabouts`; the credited visit's weight is not
    used). The credited visit holds ``keep_prior``, the others share the rest by
    weight; each visit's share is then multiplied by :func:`same_person_odds`
    of its look (1 without one).
    """
    if not visits:
        return Identity(None, 0.0, None, None, "no visit in the store")
    has_credited = credited in visits
    weights = {sid: w for sid, (_, w) in visits.items() if sid != credited}
    spread = sum(weights.values())
    rest = (1.0 - keep_prior) if has_credited else 1.0
    belief: dict[str, float] = {}
    odds: dict[str, float | None] = {}
    for sid, (enrolled, _) in visits.items():
        prior = keep_prior if sid == credited else rest * weights[sid] / max(spread, 1e-12)
        odds[sid] = None if enrolled is None else same_person_odds(look_distance(enrolled, look))
        belief[sid] = prior * (1.0 if odds[sid] is None else odds[sid])  # type: ignore[operator]
    total = sum(belief.values())
    best = max(sorted(belief), key=belief.__getitem__)
    share = belief[best] / total if total > 0 else 0.0
    enrolled_best = visits[best][0]
    fit = (
        f"look {look_distance(enrolled_best, look):.2f} from its own"
        if enrolled_best is not None
        else "no enrolled look"
    )
    return Identity(
        best,
        share,
        odds[best],
        odds.get(credited) if credited is not None else None,
        f"looks like visit {best} ({fit}; belief {share:.2f})",
    )
