"""`python tests/naive_writer.py collect ...`: collect with a deliberately naive publisher, for the crash test
to catch.

It publishes in the collector's own process and forgets what a publish cut off before it committed: no look-up
of the run's application transaction before each table's commit, as a first Delta version of this job might
have been. A run killed between two tables' commits is published again whole when it resumes, so the tables
it had appended to hold its rows twice.
"""

from etl import cli, pipeline, run_steps
from etl.lake import delta, publish
from etl.lake.staging import RunStaging


def publish_in_process(staging: RunStaging, *, row_group_rows: int, pass_fds: tuple[int, ...]) -> None:
    publish.publish_run(staging, row_group_rows=row_group_rows)


delta.has_run = lambda table, run_id: False
# Both publish: a run's end (run_steps), and a staged run complete but unpublished, on resume (pipeline).
pipeline.publish_in_child = run_steps.publish_in_child = publish_in_process

if __name__ == "__main__":
    cli.main()
