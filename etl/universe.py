"""The universe: the symbols to collect, read from a CSV with a `symbol` column or a file of one symbol a
line."""

import csv
import io
import re
from pathlib import Path

from etl.errors import UniverseError

# Starts with a letter, a digit or ^ (an index): "." or "-" alone would be a dot-segment or nothing in a URL
# path.
_TICKER = re.compile(r"[A-Z0-9^][A-Z0-9.\-^=]{0,14}", re.ASCII)
# A US class share spelled with a dot (BRK.B, BF.B, HEI.A): Yahoo wants a dash and silently returns
# nothing for the dot. Only classes A to C are taken as shares: Yahoo's market suffixes (VOD.L, RY.TO,
# SAP.DE, 7203.T) keep their dot.
_CLASS_SHARE = re.compile(r"([A-Z]{1,5})\.([A-C])")
_HOW = "letters, digits, . - ^ = only, starting with a letter, digit or ^, at most 15 characters"


def load_universe(path: Path) -> list[str]:
    """The file's symbols, normalised for Yahoo, first occurrence kept; a bad one raises UniverseError."""
    lines = _read_lines(path)
    numbered = _csv_values(path, lines) if _is_csv(lines) else _text_values(lines)
    symbols = list(dict.fromkeys(to_symbol(path, line_no, value) for line_no, value in numbered))
    if not symbols:
        raise UniverseError(f"{path} lists no symbols (only comments or blank lines); add one symbol a line")
    return symbols


def to_symbol(path: Path, line_no: int, value: str) -> str:
    """One value as Yahoo's symbol: stripped, upper-cased, class-share dot as a dash."""
    symbol = value.strip().upper()
    if not _TICKER.fullmatch(symbol) or ".." in symbol or symbol == "^":
        raise UniverseError(
            f"{path} line {line_no}: {value!r} is not a ticker symbol ({_HOW}); fix or remove that line"
        )
    return _CLASS_SHARE.sub(r"\1-\2", symbol) if _CLASS_SHARE.fullmatch(symbol) else symbol


def _read_lines(path: Path) -> list[str]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UniverseError(
            f"universe file {path} does not exist; pass --universe with a CSV or text file"
        ) from None
    except IsADirectoryError:
        raise UniverseError(f"universe {path} is a folder; pass --universe with a CSV or text file") from None
    except OSError as exc:
        raise UniverseError(
            f"universe file {path} cannot be read ({exc.strerror}); check its permissions"
        ) from None
    if b"\0" in data:
        raise UniverseError(f"universe file {path} is binary, not text; pass a CSV or one symbol a line")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UniverseError(f"universe file {path} is not UTF-8 text; save it as UTF-8") from None
    if not text.strip():
        raise UniverseError(f"universe file {path} is empty; add one symbol a line")
    # Only \n ends a line: a stray CR inside a value must be refused, not split on.
    return text.split("\n")


def _is_csv(lines: list[str]) -> bool:
    first = next((line for line in lines if line.strip() and not line.lstrip().startswith("#")), "")
    return "symbol" in (field.strip().lower() for field in first.split(","))


def _csv_values(path: Path, lines: list[str]) -> list[tuple[int, str]]:
    body = [
        (no, line) for no, line in enumerate(lines, 1) if line.strip() and not line.lstrip().startswith("#")
    ]
    reader = csv.reader(io.StringIO("\n".join(line for _, line in body)))
    header = [name.strip().lower() for name in next(reader)]
    column = header.index("symbol")
    values = []
    for (line_no, _), row in zip(body[1:], reader, strict=False):
        if len(row) <= column:
            raise UniverseError(
                f"{path} line {line_no}: no value in the `symbol` column; fix or remove that line"
            )
        values.append((line_no, row[column]))
    return values


def _text_values(lines: list[str]) -> list[tuple[int, str]]:
    values = [(no, line.split("#", 1)[0]) for no, line in enumerate(lines, 1)]
    return [(no, value) for no, value in values if value.strip()]
