"""The Parquet lake: where its files live, and how they appear in it whole, once, and `runs` last.

    <lake>/<table>/[<key>=<value>/]<run_id>.parquet     a run's rows of a table (and partition)
    <lake>/runs/<run_id>.parquet                        the run's manifest, published last
    <lake>/<table>/<key>=<value>/compacted-<id>.parquet  a compaction's file (etl/lake/compact.py)
    <lake>/compactions/<id>.parquet                     which files that compaction replaced, published last
    .<lake>.lock                                        the single writer's flock, with who holds it
    .<lake>.staging/<run_id>/
        plan.json                                   what the run collects (symbols, settings, where each
                                                    symbol's bars start); the same plan again resumes it
        batches/000007/bars/year=2026/part.arrow    a committed batch, one part (Arrow IPC) a table and
                                                    partition
        batches/000008.tmp/...                      a batch being written: never read, removed on resume
        merged/bars/year=2026/<run_id>.parquet      the lake's files, merged from the parts when publishing
    .<lake>.staging/compaction-<id>/                a compaction's files before they are linked in

The commit protocol. One writer at a time holds the lock (etl/lake/lock.py). Everything is written
under a pending name, fsynced, renamed to its own name, and its folder fsynced (etl/lake/files.py), so
a kill at any instant leaves each file, and each batch's folder of parts, whole or absent: a resumed
run re-fetches only the batches in flight (etl/lake/staging.py). When a run ends, the parts of its
committed batches are merged per table and partition into a Parquet file with large row groups,
staged beside the lake (so no `**/*.parquet` glob over the lake can see it), then linked into the
lake (a hard link refuses to replace anything) and the folder fsynced (etl/lake/publish.py). The
run's `runs` row is published last: readers trust a run once that row exists (etl/lake/holdings.py).
Publishing again after a kill picks up where it stopped: a merged file is kept once complete, a file
already linked is skipped.
"""
