"""The closed sets of the job's results: how a run ended, how a symbol ended, and the job's own error types.

StrEnums, so each value is the very string stored in the lake (`runs.status`, `failures.outcome`,
`failures.error_type`) and read by SQL.
"""

from enum import StrEnum


class RunStatus(StrEnum):
    """How a run ended; every run that publishes has one."""

    SUCCEEDED = "succeeded"
    MEMORY_LIMIT = "memory_limit"
    BELOW_MIN_SUCCESS = "below_min_success"
    SOURCE_OUTAGE = "source_outage"


class OutcomeKind(StrEnum):
    """How one requested symbol ended (`failures.outcome`)."""

    OK = "ok"
    NO_DATA = "no_data"
    ERROR = "error"


class ErrorType(StrEnum):
    """The error types the job names itself; any other is an exception's class name or `HTTP<status>`."""

    NO_DATA = "NoData"
    NO_DATA_WAVE = "NoDataWave"
    QUOTE_MISSING = "QuoteMissing"
    BAD_JSON = "BadJson"
    RATE_LIMITED = "HTTP429"
    YF_RATE_LIMITED = "YFRateLimitError"  # yfinance's exception, named by its class
