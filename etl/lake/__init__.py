"""The Parquet lake, on a local folder or in an S3 bucket: where its objects live, and how they appear in it
whole, once, and `runs` last.

    <lake>/<table>/[<key>=<value>/]<run_id>.parquet     a run's rows of a table (and partition)
    <lake>/runs/<run_id>.parquet                        the run's manifest, published last
    <lake>/<table>/<key>=<value>/compacted-<id>.parquet  a compaction's file (etl/lake/compact.py)
    <lake>/compactions/<id>.parquet                     which files that compaction replaced, published last
    .<lake>.lock                                        the single writer's lock: a flock, or a lease
    .<lake>.staging/<run_id>/
        plan.json                                   what the run collects (symbols, settings, where each
                                                    symbol's bars start); the same plan again resumes it
        parts/000007/<attempt>/bars/year=2026/part.arrow
                                                    one attempt at batch 7: a part (Arrow IPC) per table
                                                    and partition
        commits/000007.json                         batch 7 committed: which attempt, which parts
    .<lake>.staging/pending/                        a local lake's files while they are written

The commit protocol, the same on both stores (etl/lake/store.py is the one place that differs). One
writer at a time holds the lock (etl/lake/lock.py). Every object is written by a create-only put: on
a disk, a pending file fsynced and hard-linked into place; in a bucket, `If-None-Match: *`. So each
appears whole or not at all and none is ever replaced. A batch writes its parts under its own attempt
and then creates its commit record: a batch is committed once, whole, however often it was written,
and a resumed run fetches only the batches without a record (etl/lake/staging.py). When a run ends,
the parts of its committed batches are merged per table and partition into a Parquet file with large
row groups and created in the lake (etl/lake/publish.py); staging sits beside the lake, so no
`<lake>/<table>/**/*.parquet` glob ever lists a staged or partial object. The run's `runs` object is
created last: readers trust a run once it exists (etl/lake/holdings.py). Publishing again after a kill
picks up where it stopped: a file already created holds the same bytes, and is kept.
"""
