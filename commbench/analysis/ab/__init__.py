"""The statistics of an A/B experiment (docs/ab.md, "How it decides"): plan.py, what it
decides by and how alpha is shared; look.py, what its pairs say; sequence.py, the
confidence sequence an extension past the planned pairs is judged by."""

from commbench.analysis.ab.look import (
    EQUIVALENT,
    FAMILY,
    FASTER,
    OVERALL,
    SLOWER,
    UNDECIDED,
    Decided,
    Estimate,
    Look,
    decide,
    launch_times,
    look,
    newly_decided,
    replay,
    verdict,
)
from commbench.analysis.ab.plan import ALPHA, PLANNED_PAIRS, Design, Pair

__all__ = [
    "ALPHA",
    "EQUIVALENT",
    "FAMILY",
    "FASTER",
    "OVERALL",
    "PLANNED_PAIRS",
    "SLOWER",
    "UNDECIDED",
    "Decided",
    "Design",
    "Estimate",
    "Look",
    "Pair",
    "decide",
    "launch_times",
    "look",
    "newly_decided",
    "replay",
    "verdict",
]
