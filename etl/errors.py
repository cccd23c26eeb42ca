"""The exception tree; only the CLI catches EtlError, prints one line and exits.

EtlError                 anything the job reports to its user as a one-line error
├── ConfigError          a setting is malformed or out of range        (exit 2)
├── UniverseError        the universe file or a symbol in it is bad    (exit 2)
├── SourceError          Yahoo (or the emulator) could not be used     (exit 3)
├── SchemaError          Yahoo's answer does not fit a table's schema  (exit 3)
├── MemoryLimitError     the process stayed above --memory-limit-mb    (exit 1)
├── LakeError            the lake cannot be read or written            (exit 1)
│   └── LegacyLakeError  the lake predates Delta tables: migrate it    (exit 2)
└── ClusterError         a batch's Ray worker kept dying               (exit 1)
"""


class EtlError(Exception):
    """Base of every error the job reports to its user."""

    exit_code = 1


class ConfigError(EtlError):
    """A setting is malformed or out of range."""

    exit_code = 2


class UniverseError(EtlError):
    """The universe file, or a symbol in it, is not usable."""

    exit_code = 2


class SourceError(EtlError):
    """The Yahoo source could not be reached or answered nonsense."""

    exit_code = 3


class SchemaError(EtlError):
    """A value of Yahoo's answer does not fit its column's Arrow type: Yahoo changed its answer."""

    exit_code = 3


class MemoryLimitError(EtlError):
    """Memory stayed above the limit after flushing and collecting garbage."""


class LakeError(EtlError):
    """The lake cannot be read or written."""


class LegacyLakeError(LakeError):
    """The lake is of the layout before Delta tables; `etl migrate` converts it, nothing else touches it."""

    exit_code = 2


class ClusterError(EtlError):
    """A batch could not be run on the Ray cluster: its worker died more often than Ray retries it."""
