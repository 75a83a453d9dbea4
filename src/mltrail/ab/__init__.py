"""A/B experiments of models: planning, assignment and analysis.

>>> from mltrail import ab
>>> ab.sample_size_conversion(baseline=0.10, mde=0.01).control    # units per arm
14745
>>> ab.hash("seed", "user-1")                                     # GrowthBook-compatible
0.4232
>>> ab.choose_variation(ab.hash("exp", "user-1"), ab.bucket_ranges(2))   # variant index
0

Assignment (``assign``) and statistics (``stats``) are pure functions without I/O.
"""

from .assign import (
    WeightsFallbackWarning,
    assign_batch,
    bucket_ranges,
    check_weights,
    choose_variation,
    hash,
    hash_batch,
    in_namespace,
)
from .power import (
    SampleSize,
    achieved_power,
    duration_days,
    power_curve,
    sample_size,
    sample_size_continuous,
    sample_size_conversion,
)
from .stats import SRM_ALARM_P, Arm, Comparison, CovariateArm, compare, cuped, holm, srm_p_value

__all__ = sorted([
    "Arm", "Comparison", "CovariateArm", "SRM_ALARM_P", "SampleSize", "WeightsFallbackWarning",
    "achieved_power", "assign_batch", "bucket_ranges", "check_weights", "choose_variation",
    "compare", "cuped", "duration_days", "hash", "hash_batch", "holm", "in_namespace",
    "power_curve", "sample_size", "sample_size_continuous", "sample_size_conversion",
    "srm_p_value",
])
