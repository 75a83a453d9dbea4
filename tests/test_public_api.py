import mltrail


def test_all_is_sorted_and_exports_what_it_claims():
    assert mltrail.__all__ == sorted(mltrail.__all__)
    for name in mltrail.__all__:
        assert hasattr(mltrail, name), name
    public = {n for n in dir(mltrail) if not n.startswith("_")}
    modules = {"ab", "compaction", "config", "errors", "query", "serve", "storage", "tracking", "cli", "dashboard",
               "registry", "features"}
    assert public - modules - set(mltrail.__all__) == set()


def test_every_error_derives_from_the_base():
    for name in mltrail.__all__:
        obj = getattr(mltrail, name)
        if isinstance(obj, type) and issubclass(obj, Exception) and not issubclass(obj, Warning):
            assert issubclass(obj, mltrail.MltrailError)
