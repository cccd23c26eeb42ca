"""A Yahoo Finance emulator on loopback: Yahoo's wire format, synthetic deterministic data, injectable
faults."""

from etl.emulator.server import Emulator, EmulatorConfig, serve

__all__ = ["Emulator", "EmulatorConfig", "serve"]
