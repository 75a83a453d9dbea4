"""Assignment: GrowthBook's cross-SDK cases, exactly; splits within sampling error."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from mltrail.ab import assign

CASES = json.loads((Path(__file__).parent / "data" / "growthbook-cases.json").read_text())


@pytest.mark.parametrize("seed,value,version,expected", CASES["hash"])
def test_hash_cases(seed, value, version, expected):
    assert assign.hash(seed, value, version) == expected


@pytest.mark.parametrize("name,args,expected", CASES["getBucketRange"])
def test_bucket_range_cases(name, args, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", assign.WeightsFallbackWarning)
        ranges = assign.bucket_ranges(*args)
    flat = [bound for r in ranges for bound in r]
    assert flat == pytest.approx([bound for r in expected for bound in r], abs=1e-12), name


@pytest.mark.parametrize("name,x,ranges,expected", CASES["chooseVariation"])
def test_choose_variation_cases(name, x, ranges, expected):
    assert assign.choose_variation(x, ranges) == expected


@pytest.mark.parametrize("name,unit_id,namespace,expected", CASES["inNamespace"])
def test_in_namespace_cases(name, unit_id, namespace, expected):
    assert assign.in_namespace(unit_id, namespace) is expected


def test_unusable_weights_warn_or_raise():
    with pytest.warns(assign.WeightsFallbackWarning):
        assign.bucket_ranges(2, 1.0, [0.7, 0.6])
    for bad in ([0.7, 0.6], [0.5], [-0.5, 1.5], [0.4, 0.5999]):
        with pytest.raises(ValueError):
            assign.bucket_ranges(2, 1.0, bad, strict=True)


def test_utf16_code_units_as_javascript_hashes_them():
    # U+1F600 is one code point but two UTF-16 code units (a surrogate pair) in JavaScript
    assert assign._code_units("a😀") == [0x61, 0xD83D, 0xDE00]
    assert assign.fnv1a32("a😀") != assign.fnv1a32("a\U0001F601")


def test_batch_hashing_equals_one_by_one():
    ids = [f"user-{i}" for i in range(2000)] + ["", "ü", "用户", "a😀b", "x" * 40]
    batch = assign.hash_batch("exp-seed", ids)
    assert list(batch) == [assign.hash("exp-seed", i) for i in ids]


@pytest.mark.slow
def test_split_matches_weights_within_sampling_error():
    ids = [f"u{i}" for i in range(100_000)]
    weights = [0.5, 0.3, 0.2]
    variants = assign.assign_batch("split-test", ids, assign.bucket_ranges(3, 1.0, weights))
    counts = np.bincount(variants, minlength=3)
    assert stats.chisquare(counts, np.array(weights) * len(ids)).pvalue > 0.001


def test_changing_coverage_never_moves_a_unit():
    ids = [f"u{i}" for i in range(20_000)]
    low = assign.assign_batch("cov", ids, assign.bucket_ranges(2, 0.3, [0.5, 0.5]))
    high = assign.assign_batch("cov", ids, assign.bucket_ranges(2, 0.9, [0.5, 0.5]))
    entered = low >= 0
    assert (low[entered] == high[entered]).all()  # everyone in at 30% keeps their variant
    assert 0.28 < entered.mean() < 0.32 and 0.88 < (high >= 0).mean() < 0.92


def test_a_new_seed_reshuffles():
    ids = [f"u{i}" for i in range(20_000)]
    ranges = assign.bucket_ranges(2)
    first = assign.assign_batch("phase-1", ids, ranges)
    second = assign.assign_batch("phase-2", ids, ranges)
    assert 0.45 < (first == second).mean() < 0.55  # independent: about half agree by chance
