from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mltrail import InvalidKeyError
from mltrail.storage.layout import Layout, check_key, experiment_dirname


@pytest.mark.parametrize("key", ["loss", "train/loss", "val/acc@5", "a.b", "流失率", "x" * 250,
                                 "with space", "a-b_c:d"])
def test_valid_keys_are_returned_unchanged(key):
    assert check_key("metric", key) == key


@pytest.mark.parametrize("key,reason", [
    ("", "empty"), ("x" * 251, "251 characters"), ("..", "resolve"), ("a/./b", "resolve"),
    ("a/../b", "resolve"), ("a//b", "resolve"), ("/abs", "start or end"), ("a/", "start or end"),
    ("a\\b", "backslash"), ("a\nb", "control"), (".", "resolve"),
])
def test_invalid_keys_name_the_key_and_reason(key, reason):
    with pytest.raises(InvalidKeyError) as err:
        check_key("metric", key)
    assert err.value.key == key
    assert reason in str(err.value)
    assert isinstance(err.value, ValueError)


def test_non_string_key_is_rejected():
    with pytest.raises(InvalidKeyError, match="must be a string"):
        check_key("param", 3)


@pytest.mark.slow
@given(st.text(min_size=1, max_size=300).filter(lambda s: s.strip()))
def test_experiment_folder_never_escapes_the_root(name):
    root = Path("/store")
    folder = Layout(root).experiment_dir(name)
    assert folder.parent == root / "experiments"
    assert folder.name not in ("", ".", "..")
    assert "/" not in experiment_dirname(name)


def test_distinct_names_get_distinct_folders():
    names = ["a/b", "a_b", "a b", "a?b", "../a_b", "流失模型研究"]
    folders = {experiment_dirname(n) for n in names}
    assert len(folders) == len(names)
    assert experiment_dirname("churn_model_mlops") == "churn_model_mlops"
