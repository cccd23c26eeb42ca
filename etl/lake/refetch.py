"""The child that reads where each symbol's bars resume (etl/lake/holdings.py runs it): DuckDB and deltalake
load in this process only, never in the collector's.

`python -m etl.lake.refetch LAKE REVISION_DAYS` prints `{symbol: first date to fetch}` as JSON.
"""

import json
import sys

from etl.lake.child import errors_to_one_line
from etl.lake.paths import open_lake
from etl.lake.views import connect_lake
from etl.queries import fetch_dicts, load_sql


def main() -> None:
    lake, revision_days = open_lake(sys.argv[1]), int(sys.argv[2])
    with errors_to_one_line():
        rows = fetch_dicts(connect_lake(lake), load_sql("refetch_from"), {"revision_days": revision_days})
    print(json.dumps({row["symbol"]: row["refetch_from"].isoformat() for row in rows}))


if __name__ == "__main__":
    main()
