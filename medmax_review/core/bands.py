"""The bands every score is reported in. Scoring writes them; review, statistics and the
project settings read them, so they live below all three."""

GOOD, FAIR, POOR, FAIL = "good", "fair", "poor", "fail"
# A scorer that had nothing to check says so: its neutral value must not read as "good", move
# the queue or trip an auto-reject threshold.
NA = "n/a"
FLAGGED_BANDS = (POOR, FAIL)


def band_for(value: float) -> str:
    """The honest band of a 0..1 value (1 = good); scorers put hard failures at 0."""
    if value >= 0.8:
        return GOOD
    if value >= 0.5:
        return FAIR
    if value >= 0.2:
        return POOR
    return FAIL
