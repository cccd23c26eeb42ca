"""Settings from flags, ETL_<NAME>, etl.toml or [tool.etl] in pyproject.toml, then defaults; progress and
--quiet."""

import json
import os
import pty
import re
import subprocess
import sys

import pytest

from conftest import cli_env, run_cli, write_universe, yahoo_route
from etl.cli import app

SYMBOLS = ["AAPL", "MSFT", "NVDA", "IBM", "DLSTD"]  # the emulator fixture answers DLSTD as delisted
BATCH_LINE = re.compile(
    r"^batch (\d)/3: \d/\d ok, .*; (\d) ok, (\d) failed so far, RSS \d+ MB, ETA \d+:\d\d$"
)


def show_config(cwd, *args: str, env: dict | None = None) -> dict[str, tuple[str, str]]:
    """`collect --show-config` as {setting: (value, where it came from)}."""
    result = run_cli("collect", "--show-config", *args, env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr
    rows = [
        re.split(r"\s{2,}", line.strip()) for line in result.stdout.splitlines()[2:]
    ]  # under header and rule
    return {row[0]: (row[1] if len(row) == 3 else "", row[-1]) for row in rows}


def test_a_flag_beats_the_environment_which_beats_etl_toml_which_beats_the_default(tmp_path):
    (tmp_path / "etl.toml").write_text('batch_size = 3\nconcurrency = 2\nhistory = "1mo"\ntimeout_s = 12.5\n')
    settings = show_config(tmp_path, "--batch-size", "6", env={"ETL_BATCH_SIZE": "4", "ETL_CONCURRENCY": "5"})
    assert settings["batch_size"] == ("6", "flag")
    assert settings["concurrency"] == ("5", "env ETL_CONCURRENCY")
    assert settings["history"] == ("1mo", "etl.toml")
    assert settings["timeout_s"] == ("12.5", "etl.toml")
    assert settings["min_success"] == ("0.95", "default")


def test_tool_etl_in_pyproject_is_read_when_there_is_no_etl_toml(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.etl]\nbatch_size = 20\n')
    assert show_config(tmp_path)["batch_size"] == ("20", "pyproject.toml [tool.etl]")
    (tmp_path / "etl.toml").write_text("concurrency = 3\n")
    settings = show_config(tmp_path)
    assert settings["batch_size"] == ("10", "default") and settings["concurrency"] == ("3", "etl.toml")


def test_config_names_the_file_instead_of_etl_toml(tmp_path):
    (tmp_path / "etl.toml").write_text("concurrency = 3\n")
    (tmp_path / "nightly.toml").write_text("batch_size = 25\n")
    settings = show_config(tmp_path, "--config", "nightly.toml")
    assert settings["batch_size"] == ("25", "nightly.toml") and settings["concurrency"] == ("8", "default")
    assert show_config(tmp_path, env={"ETL_CONFIG": "nightly.toml"})["batch_size"] == ("25", "nightly.toml")


def route_env(emulator) -> dict[str, str]:
    """The emulator's route as ETL_<NAME> settings, as a scheduler would set them."""
    return {"ETL_PROXY": emulator.proxy_url, "ETL_CA_BUNDLE": str(emulator.ca_path)}


def test_collect_runs_with_the_settings_of_etl_toml_and_readers_find_its_lake(emulator, tmp_path):
    write_universe(tmp_path / "u.txt", SYMBOLS)
    (tmp_path / "etl.toml").write_text(
        'universe = "u.txt"\nlake = "lake"\nbatch_size = 2\nmin_success = 0.5\n'
    )
    result = run_cli("collect", env=route_env(emulator), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sum(line.startswith("batch ") for line in result.stderr.splitlines()) == 3  # batch_size = 2
    summary = run_cli("summary", "--json", cwd=tmp_path)
    assert summary.returncode == 0, summary.stderr
    assert result.stdout.split()[1] == json.loads(summary.stdout)["run_id"]


BAD = [
    (
        "unknown-key",
        "bach_size = 3\n",
        {},
        "etl.toml: unknown setting 'bach_size' (did you mean 'batch_size'?)",
    ),
    (
        "text-for-integer",
        'batch_size = "x"\n',
        {},
        "etl.toml: batch_size: 'x' is not a valid integer; fix or remove",
    ),
    ("fraction-for-integer", "batch_size = 2.5\n", {}, "etl.toml: batch_size: '2.5' is not a valid integer"),
    ("list", 'history = ["1y"]\n', {}, "etl.toml: history = ['1y'] is not one value"),
    (
        "malformed-toml",
        "batch_size = \n",
        {},
        "etl.toml: not valid TOML (Invalid value (at line 1, column 14))",
    ),
    ("not-utf-8", b"history = '\xff'\n", {}, "etl.toml: not valid TOML"),
    (
        "env-text-for-integer",
        None,
        {"ETL_BATCH_SIZE": "ten"},
        "env ETL_BATCH_SIZE: 'ten' is not a valid integer; fix",
    ),
    ("env-flag", None, {"ETL_RESUME": "maybe"}, "env ETL_RESUME: 'maybe' is not a valid boolean"),
    (
        "missing-config",
        None,
        {"ETL_CONFIG": "nope.toml"},
        "nope.toml: cannot read it (No such file or directory)",
    ),
]


@pytest.mark.parametrize(
    ("toml", "env", "message"), [case[1:] for case in BAD], ids=[case[0] for case in BAD]
)
def test_a_bad_setting_is_refused_in_one_line_before_any_request(emulator, tmp_path, toml, env, message):
    universe = write_universe(tmp_path / "u.txt", SYMBOLS)
    if toml is not None:
        (tmp_path / "etl.toml").write_bytes(toml if isinstance(toml, bytes) else toml.encode())
    before = sorted(tmp_path.iterdir())
    result = run_cli(
        "collect",
        "--universe",
        str(universe),
        "--lake",
        str(tmp_path / "lake"),
        env={**route_env(emulator), **env},
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and message in result.stderr
    assert emulator.total_requests() == 0 and sorted(tmp_path.iterdir()) == before


def test_demo_never_takes_the_configured_lake_for_its_synthetic_data():
    lakes = {
        name: next(p for p in command.params if p.name == "lake")
        for name, command in app.commands.items()
        if any(p.name == "lake" for p in command.params)
    }
    assert lakes.pop("demo").envvar is None
    assert {option.envvar for option in lakes.values()} == {"ETL_LAKE"}


def collect_args(emulator, tmp_path) -> list[str]:
    universe = write_universe(tmp_path / "u.txt", SYMBOLS)
    return [
        "collect",
        "--universe",
        str(universe),
        "--lake",
        str(tmp_path / "lake"),
        "--batch-size",
        "2",
        "--min-success",
        "0.5",
        *yahoo_route(emulator),
    ]


def test_one_line_a_batch_with_ok_and_failed_so_far_rss_and_eta(emulator, tmp_path):
    result = run_cli(*collect_args(emulator, tmp_path))
    assert result.returncode == 0, result.stderr
    lines = [BATCH_LINE.match(line) for line in result.stderr.splitlines()]
    assert all(lines) and [m.groups() for m in lines] == [("1", "2", "0"), ("2", "4", "0"), ("3", "4", "1")]
    assert result.stdout.startswith("run ") and result.stdout.count("\n") == 1


def test_quiet_prints_no_progress_only_the_result(emulator, tmp_path):
    result = run_cli(*collect_args(emulator, tmp_path), "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and result.stdout.startswith("run ") and result.stdout.count("\n") == 1


def test_a_terminal_gets_a_progress_bar_instead_of_lines(emulator, tmp_path):
    env = cli_env()
    controller, terminal = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "etl", *collect_args(emulator, tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=terminal,
        text=True,
    )
    os.close(terminal)
    seen = b""
    while chunk := _read_until_closed(controller):
        seen += chunk
    os.close(controller)
    assert child.wait(timeout=120) == 0 and child.stdout.read().startswith("run ")
    bar = seen.decode()
    assert "3/3  4 ok, 1 failed so far, RSS" in bar and "ETA" in bar and "batch 1/3:" not in bar


def _read_until_closed(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except OSError:  # EIO: the child closed its end of the terminal
        return b""
