"""A Yahoo Finance emulator on loopback: Yahoo's wire format, synthetic deterministic data, injectable
faults."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from etl.emulator.server import Emulator, EmulatorConfig, serve

__all__ = ["Emulator", "EmulatorConfig", "serve"]


def __getattr__(name: str) -> object:
    """The server's names, loaded on first use: `python -m etl --help` lists the `emulator` command (in
    etl/emulator/command.py) without loading the server, trustme and numpy."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from etl.emulator import server

    return getattr(server, name)
