"""The settings file: --config FILE, else ./etl.toml, else the [tool.etl] table of ./pyproject.toml."""

import difflib
import tomllib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from etl.errors import ConfigError

SETTINGS_FILE = Path("etl.toml")
PYPROJECT_FILE = Path("pyproject.toml")


@dataclass(frozen=True)
class SettingsFile:
    """Settings read from a file: where from, for people, and each value as a string, as a flag gives it."""

    label: str
    values: dict[str, str]


def load_settings_file(config_path: Path | None, known: Collection[str]) -> SettingsFile | None:
    """The settings of --config FILE, else ./etl.toml, else ./pyproject.toml's [tool.etl]; None if there are
    none."""
    if config_path is not None:
        return _to_settings_file(str(config_path), _read_toml(config_path), known)
    if SETTINGS_FILE.exists():
        return _to_settings_file(str(SETTINGS_FILE), _read_toml(SETTINGS_FILE), known)
    if PYPROJECT_FILE.is_file():
        tool = _read_toml(PYPROJECT_FILE).get("tool")
        table = tool.get("etl") if isinstance(tool, dict) else None
        if table is not None:
            return _to_settings_file(f"{PYPROJECT_FILE} [tool.etl]", table, known)
    return None


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read it ({exc.strerror or exc}); fix it or pass another with --config FILE"
        ) from exc
    except ValueError as exc:  # TOMLDecodeError, or UnicodeDecodeError for a file that is not UTF-8
        raise ConfigError(
            f"{path}: not valid TOML ({exc}); write one setting a line, like batch_size = 20"
        ) from exc


def _to_settings_file(label: str, table: object, known: Collection[str]) -> SettingsFile:
    """Refuses a key that is no setting and a value that is a table or a list; the option's type checks the
    rest."""
    if not isinstance(table, dict):
        raise ConfigError(f"{label}: {table!r} is not a table of settings like batch_size = 20")
    for key, value in table.items():
        if key not in known:
            guess = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {guess[0]!r}?)" if guess else ""
            raise ConfigError(
                f"{label}: unknown setting {key!r}{hint}; use one of {', '.join(sorted(known))}"
            )
        if isinstance(value, (dict, list)):
            raise ConfigError(
                f"{label}: {key} = {value!r} is not one value; give a string, a number or true/false"
            )
    # Strings, as typed after a flag: click's own types then refuse 2.5 for a whole number, where int() would
    # cut it.
    return SettingsFile(label, {key: str(value) for key, value in table.items()})
