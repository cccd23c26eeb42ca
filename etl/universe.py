"""The universe: the symbols to collect, read from a CSV with a `symbol` column or a file of one symbol a
line. A CSV may also say what each symbol is (name, GICS sector and sub-industry, whether it is one of the
market's benchmarks): the lake's `symbols` table, which the market brief groups and picks by."""

import csv
import io
import re
from dataclasses import dataclass
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
COLUMNS = ("symbol", "name", "sector", "industry", "benchmark")
_FLAGS = {"true": True, "false": False, "": False}


@dataclass(frozen=True)
class Member:
    """A symbol of the universe and what the file says it is; a column the file lacks is None."""

    symbol: str
    name: str | None = None
    sector: str | None = None
    industry: str | None = None
    benchmark: bool = False


def load_universe(path: Path) -> list[str]:
    """The file's symbols, normalised for Yahoo, first occurrence kept; a bad one raises UniverseError."""
    return [member.symbol for member in load_members(path)]


def load_members(path: Path) -> list[Member]:
    """The file's members, first occurrence of each symbol kept; a bad value raises UniverseError."""
    lines = _read_lines(path)
    members = _csv_members(path, lines) if _is_csv(lines) else _text_members(path, lines)
    unique: dict[str, Member] = {}
    for member in members:
        unique.setdefault(member.symbol, member)
    if not unique:
        raise UniverseError(f"{path} lists no symbols (only comments or blank lines); add one symbol a line")
    return list(unique.values())


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


def _csv_members(path: Path, lines: list[str]) -> list[Member]:
    body = [
        (no, line) for no, line in enumerate(lines, 1) if line.strip() and not line.lstrip().startswith("#")
    ]
    reader = csv.reader(io.StringIO("\n".join(line for _, line in body)))
    header = [name.strip().lower() for name in next(reader)]
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise UniverseError(
            f"{path} line {body[0][0]}: unknown column {unknown[0]!r}; the columns are {', '.join(COLUMNS)}"
        )
    rows = zip(body[1:], reader, strict=False)
    # A short row is empty in the columns after its last value, so each check sees every column the file has.
    padded = ((line_no, [*row, *[""] * (len(header) - len(row))]) for (line_no, _), row in rows)
    return [_csv_member(path, line_no, dict(zip(header, row, strict=False))) for line_no, row in padded]


def _csv_member(path: Path, line_no: int, row: dict[str, str]) -> Member:
    if not row.get("symbol"):
        raise UniverseError(
            f"{path} line {line_no}: no value in the `symbol` column; fix or remove that line"
        )
    flag = row.get("benchmark", "").strip().lower()
    if flag not in _FLAGS:
        raise UniverseError(
            f"{path} line {line_no}: benchmark {row['benchmark']!r} is not true or false; fix that line"
        )
    sector = row.get("sector", "").strip() or None
    # A benchmark (an index, a rate, a currency) has no GICS sector; a stock without one would fall out
    # of the brief's sector moves unseen.
    if "sector" in row and sector is None and not _FLAGS[flag]:
        raise UniverseError(
            f"{path} line {line_no}: {row['symbol'].strip()!r} has an empty sector; give its GICS sector, "
            f"or mark it benchmark=true"
        )
    return Member(
        to_symbol(path, line_no, row["symbol"]),
        name=row.get("name", "").strip() or None,
        sector=sector,
        industry=row.get("industry", "").strip() or None,
        benchmark=_FLAGS[flag],
    )


def _text_members(path: Path, lines: list[str]) -> list[Member]:
    values = [(no, line.split("#", 1)[0]) for no, line in enumerate(lines, 1)]
    return [Member(to_symbol(path, no, value)) for no, value in values if value.strip()]
