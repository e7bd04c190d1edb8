"""Personal ranking: one score per (reader, entry), with the reasons behind it. The formula is
in scoring.py; its fitted constants, and how they were chosen, in tuning.py."""

from digest.models import Ranked
from digest.rank.ranker import Ranker, build_ranker
from digest.rank.select import Selection
from digest.rank.tuning import Tuning

__all__ = ["Ranked", "Ranker", "Selection", "Tuning", "build_ranker"]
