"""`python tests/naive_writer.py collect ...`: collect with a deliberately naive writer, for the crash test to
catch.

It streams every batch straight into the run's final files in the lake and closes them at the end,
as a first version of this job did: no staging, no commit, a file without a footer while it runs.
"""

import contextlib
import sys
from pathlib import Path

import pyarrow.parquet as pq

from etl import cli, pipeline
from etl.lake import staging
from etl.lake.formats import file_schema
from etl.lake.paths import lake_folder

LAKE_DIR = Path(sys.argv[sys.argv.index("--lake") + 1])
_open_files: dict[Path, pq.ParquetWriter] = {}


class InPlaceParts(staging.BatchParts):
    def __init__(self, run: staging.RunStaging) -> None:
        super().__init__(run.prefix, run.started_at.date())
        self.run_id = run.run_id

    def write(self, table, batch) -> None:
        for partition, rows in self._split(table, batch):
            path = LAKE_DIR / lake_folder(table, partition) / f"{self.run_id}.parquet"
            if path not in _open_files:
                path.parent.mkdir(parents=True, exist_ok=True)
                _open_files[path] = pq.ParquetWriter(path, file_schema(table))
            _open_files[path].write_batch(rows)


@contextlib.contextmanager
def batch_in_place(run: staging.RunStaging, batch_no: int):
    yield InPlaceParts(run)


def publish_in_place(run: staging.RunStaging, *, row_group_rows: int, pass_fds: tuple[int, ...]) -> None:
    for writer in _open_files.values():
        writer.close()
    run.discard()


staging.RunStaging.batch = batch_in_place
pipeline.publish_in_child = publish_in_place

if __name__ == "__main__":
    cli.main()
