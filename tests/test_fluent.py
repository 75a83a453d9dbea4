"""The module-level conveniences' default store."""

from mltrail import fluent


def test_the_default_store_is_made_again_when_a_setting_it_read_changed(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTRAIL_DIR", str(tmp_path / "runs"))
    first = fluent.default_store()
    assert fluent.default_store() is first  # one Store while nothing changed
    assert first.tracking.crash_after == 120
    monkeypatch.setenv("MLTRAIL_CRASH_AFTER_SECONDS", "5")  # read when a Store is made
    assert fluent.default_store().tracking.crash_after == 5
    monkeypatch.setenv("MLTRAIL_DIR", str(tmp_path / "other"))
    assert fluent.default_store().root == tmp_path / "other"
