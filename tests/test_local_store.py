"""A lake in a folder, as a store of keys: listed at any depth, and deleted with the folders they leave empty,
as in a bucket where a folder is only a prefix."""

from etl.lake.store import LocalStore


def test_keys_are_listed_at_any_depth_relative_to_the_lake_and_sorted(tmp_path):
    store = LocalStore(tmp_path / "lake", tmp_path / "pending")
    for key in ("b/x/2.parquet", "a.parquet", "b/1.parquet", "c/z.parquet"):
        store.put_new(key, b"data")
    assert store.list_keys("") == ["a.parquet", "b/1.parquet", "b/x/2.parquet", "c/z.parquet"]
    assert store.list_keys("b/") == ["b/1.parquet", "b/x/2.parquet"]
    assert store.list_keys("nothing/") == []


def test_deleting_keys_removes_the_folders_they_leave_empty_and_no_other(tmp_path):
    lake_dir = tmp_path / "lake"
    store = LocalStore(lake_dir, tmp_path / "pending")
    for key in ("s/run/1/a.parquet", "s/run/1/deep/b.parquet", "s/run/2/c.parquet", "s/other.parquet"):
        store.put_new(key, b"data")
    store.delete(["s/run/1/a.parquet", "s/run/1/deep/b.parquet", "s/run/2/c.parquet", "s/gone.parquet"])
    assert store.list_keys("") == ["s/other.parquet"]
    assert sorted(str(p.relative_to(lake_dir)) for p in lake_dir.rglob("*")) == ["s", "s/other.parquet"]
    store.delete(["s/other.parquet"])
    assert lake_dir.is_dir() and list(lake_dir.iterdir()) == []  # the lake's own folder stays
