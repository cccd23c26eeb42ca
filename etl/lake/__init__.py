"""The lake of Delta tables, on a local folder or in an S3 bucket: where its objects live, and how a run's
rows appear in it whole, once a table, and `runs` last.

    <lake>/<table>/_delta_log/                      each table's Delta log: its commits and checkpoints
    <lake>/<table>/[<key>=<value>/...]part-*.parquet the table's Parquet files (bars by year and month)
    .<lake>.lock                                    the single writer's lock: a flock, or a lease
    .<lake>.staging/<run_id>/
        plan.json                                   what the run collects (symbols, settings, where each
                                                    symbol's bars start); the same plan again resumes it
        parts/000007/<attempt>/bars/part.arrow      one attempt at batch 7: a part (Arrow IPC) per table
        commits/000007.json                         batch 7 committed: which attempt, which tables

The commit protocol, the same on both stores. One writer at a time holds the lock (etl/lake/lock.py).
Staged objects are written by create-only puts (etl/lake/store.py: on a disk, a pending file fsynced and
hard-linked into place; in a bucket, `If-None-Match: *`), so each appears whole or not at all. A batch
writes its parts under its own attempt and then creates its commit record: a batch is committed once,
whole, however often it was written, and a resumed run fetches only the batches without a record
(etl/lake/staging.py). When a run ends, its manifest row is staged, then a child process streams the
committed parts into each Delta table as one commit (etl/lake/publish.py, etl/lake/delta.py): a MERGE for
bars, dividends and splits, an append for the others, `runs` last. A Delta commit is a log entry created
create-only (a rename on a disk, a conditional put in a bucket): a table is at its old version or its new
one, never between, and a reader of any engine sees only committed files. Each commit carries the run's id
as an application transaction, so publishing again after a kill skips the tables committed before; a run
cut off while it published is finished by the next collect, whatever that one collects.
"""
