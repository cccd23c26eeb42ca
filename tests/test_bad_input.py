"""Every bad input to `collect`: one line naming the value, exit 2, no request sent, not a byte of the lake
changed."""

import pytest

from conftest import run_cli, write_universe, yahoo_route

GOOD = ["AAPL", "MSFT"]

# (id, universe file content or None for "as given by path", extra args, a part of the one-line message)
UNIVERSES = [
    ("empty", b"", "is empty"),
    ("blank", b" \n\n", "is empty"),
    ("only-comments", b"# nothing\n\n# here\n", "lists no symbols"),
    ("binary", b"\x89PNG\r\n\x1a\n\x00\x00", "is binary"),
    ("nul", b"AAPL\nMS\x00FT\n", "is binary"),
    ("latin-1", b"caf\xe9\n", "not UTF-8"),
    ("space", b"AAPL\nAA PL\n", "line 2: 'AA PL' is not a ticker"),
    ("quote", b"AAPL\n'MSFT'\n", "line 2: \"'MSFT'\" is not a ticker"),
    ("double-quote", b'AAPL\n"MSFT"\n', "line 2: '\"MSFT\"' is not a ticker"),
    ("semicolon", b"AAPL;DROP\n", "line 1: 'AAPL;DROP' is not a ticker"),
    ("slash", b"AAPL/../../admin\n", "line 1: 'AAPL/../../admin' is not a ticker"),
    ("dot-dot", b"A..B\n", "line 1: 'A..B' is not a ticker"),
    ("question", b"AAPL?x=1\n", "line 1: 'AAPL?x=1' is not a ticker"),
    ("hash-in-csv", b"symbol\nAAPL#x\n", "line 2: 'AAPL#x' is not a ticker"),
    ("percent", b"AAPL%2F\n", "line 1: 'AAPL%2F' is not a ticker"),
    ("carriage-return", b"AA\rPL\n", "line 1: 'AA\\rPL' is not a ticker"),
    ("cyrillic-a", "\u0410APL\n".encode(), "line 1: '\u0410APL' is not a ticker"),
    ("over-long", b"ABCDEFGHIJKLMNOP\n", "line 1: 'ABCDEFGHIJKLMNOP' is not a ticker"),
    ("sql", b"AAPL\n'; drop table bars; --\n", 'line 2: "\'; drop table bars; --" is not a ticker'),
    ("csv-without-symbol-column", b"ticker,name\nAAPL,Apple\n", "'ticker,name' is not a ticker"),
]

# (id, args, a part of the one-line message)
OPTIONS = [
    ("batch-size-0", ["--batch-size", "0"], "--batch-size 0 must be a whole number of at least 1"),
    ("batch-size-negative", ["--batch-size", "-3"], "--batch-size -3 must be a whole number of at least 1"),
    (
        "batch-size-text",
        ["--batch-size", "ten"],
        "Invalid value for '--batch-size': 'ten' is not a valid integer",
    ),
    ("history", ["--history", "7y"], "--history '7y' is not a Yahoo period; use one of 1d, 5d"),
    (
        "memory-limit-below-use",
        ["--memory-limit-mb", "20"],
        "--memory-limit-mb 20 is below what the job uses",
    ),
    ("memory-limit-zero", ["--memory-limit-mb", "0"], "--memory-limit-mb 0.0 must be above 0"),
    ("min-success", ["--min-success", "1.5"], "--min-success 1.5 must be between 0 and 1"),
    ("concurrency", ["--concurrency", "0"], "--concurrency 0 must be between 1 and 64"),
    ("timeout", ["--timeout-s", "-1"], "--timeout-s -1.0 must be above 0"),
    (
        "proxy-scheme",
        ["--proxy", "ftp://proxy:21"],
        "--proxy 'ftp://proxy:21' is not a proxy URL like http://",
    ),
    ("proxy-no-host", ["--proxy", "http://"], "--proxy 'http://' is not a proxy URL"),
    ("proxy-port", ["--proxy", "http://proxy:port"], "--proxy 'http://proxy:port' is not a proxy URL"),
    ("proxy-secret", ["--proxy", "ftp://user:s3cret@proxy"], "--proxy 'ftp://***@proxy' is not a proxy URL"),
    # Relative to the repository, where run_cli runs: a file that is no PEM, a folder, nothing.
    (
        "ca-bundle-not-pem",
        ["--ca-bundle", "pyproject.toml"],
        "--ca-bundle pyproject.toml: not a PEM file of certificates (OpenSSL: NO_CERTIFICATE_OR_CRL_FOUND)",
    ),
    ("ca-bundle-folder", ["--ca-bundle", "etl"], "--ca-bundle etl: Is a directory"),
    (
        "ca-bundle-missing",
        ["--ca-bundle", "no-such-ca.pem"],
        "--ca-bundle no-such-ca.pem: No such file or directory",
    ),
    ("unknown-option", ["--bach-size", "5"], "No such option '--bach-size'. Did you mean '--batch-size'?"),
    ("resume-nothing", ["--resume"], "--resume: no unfinished run of this universe and settings"),
    ("max-rps-zero", ["--max-rps", "0"], "--max-rps 0 must be above 0; leave it out for no cap"),
    ("ray-address", ["--ray", "head"], "--ray 'head' is not a Ray address; use auto, ray://host:10001"),
    # Port 1 of loopback: nothing listens there, and the refusal is immediate.
    ("ray-no-cluster", ["--ray", "127.0.0.1:1"], "--ray 127.0.0.1:1: no Ray cluster answers there"),
    (
        "ray-client-no-cluster",
        ["--ray", "ray://127.0.0.1:1"],
        "--ray ray://127.0.0.1:1: no Ray cluster answers",
    ),
]


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """A lake holding one completed run."""
    from etl.emulator import Emulator, EmulatorConfig

    folder = tmp_path_factory.mktemp("bad-input")
    lake_dir = folder / "lake"
    with Emulator(EmulatorConfig()) as emulator:
        result = run_cli(
            "collect",
            *yahoo_route(emulator),
            "--universe",
            str(write_universe(folder / "good.txt", GOOD)),
            "--lake",
            str(lake_dir),
        )
    assert result.returncode == 0, result.stderr
    return lake_dir


def snapshot(lake_dir):
    """Every file under the lake and in its staging folder (the lock file beside it records its last
    holder)."""
    files = [p for p in lake_dir.parent.rglob("*") if p.is_file() and p.name != ".lake.lock"]
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files}


def assert_refused(result, message: str, emulator, lake_dir, before) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert emulator.total_requests() == 0
    assert snapshot(lake_dir) == before


@pytest.mark.parametrize(
    ("content", "message"), [case[1:] for case in UNIVERSES], ids=[c[0] for c in UNIVERSES]
)
def test_a_bad_universe_file_is_refused(emulator, lake, tmp_path, content, message):
    universe = tmp_path / "universe.txt"
    universe.write_bytes(content)
    before = snapshot(lake)
    result = run_cli("collect", *yahoo_route(emulator), "--universe", str(universe), "--lake", str(lake))
    assert_refused(result, message, emulator, lake, before)
    assert str(universe) in result.stderr


@pytest.mark.parametrize(
    "path", ["missing.txt", ".", "/proc/self/mem"], ids=["missing", "folder", "unreadable"]
)
def test_a_universe_path_that_is_not_a_readable_file_is_refused(emulator, lake, tmp_path, path):
    universe = tmp_path / path
    before = snapshot(lake)
    result = run_cli("collect", *yahoo_route(emulator), "--universe", str(universe), "--lake", str(lake))
    assert_refused(result, str(universe), emulator, lake, before)


@pytest.mark.parametrize(("args", "message"), [case[1:] for case in OPTIONS], ids=[c[0] for c in OPTIONS])
def test_a_bad_option_is_refused(emulator, lake, tmp_path, args, message):
    universe = write_universe(tmp_path / "u.txt", GOOD)
    before = snapshot(lake)
    result = run_cli(
        "collect", "--universe", str(universe), "--lake", str(lake), *yahoo_route(emulator), *args
    )
    assert_refused(result, message, emulator, lake, before)
    assert "s3cret" not in result.stdout + result.stderr  # a proxy's password is never printed


def test_a_malformed_setting_from_the_environment_is_refused(emulator, lake, tmp_path):
    universe = write_universe(tmp_path / "u.txt", GOOD)
    before = snapshot(lake)
    result = run_cli("collect", "--universe", str(universe), "--lake", str(lake), env={"ETL_PROXY": "yahoo"})
    assert_refused(result, "--proxy 'yahoo' is not a proxy URL", emulator, lake, before)


@pytest.mark.parametrize(
    ("lake_path", "message"),
    [
        ("lake-file", "is a file; pass a folder"),
        ("/proc/etl/lake", "cannot write in /proc"),
        ("/sys/lake", "cannot write in /sys"),
        ("lake-file/lake", "lake-file (Not a directory)"),
    ],
    ids=["a-file", "proc", "sys", "under-a-file"],
)
def test_a_lake_that_cannot_be_written_is_refused(emulator, lake, tmp_path, lake_path, message):
    (tmp_path / "lake-file").write_bytes(b"precious")
    universe = write_universe(tmp_path / "u.txt", GOOD)
    before = snapshot(lake)
    result = run_cli(
        "collect", *yahoo_route(emulator), "--universe", str(universe), "--lake", str(tmp_path / lake_path)
    )
    assert_refused(result, message, emulator, lake, before)
    assert (tmp_path / "lake-file").read_bytes() == b"precious"


def test_ray_without_the_extra_installed_is_refused(emulator, lake, tmp_path):
    """As where Ray is not installed: a `ray` package on the path that cannot be imported."""
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    universe = write_universe(tmp_path / "u.txt", GOOD)
    before = snapshot(lake)
    result = run_cli(
        "collect",
        "--universe",
        str(universe),
        "--lake",
        str(lake),
        *yahoo_route(emulator),
        "--ray",
        "auto",
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert_refused(result, "--ray: Ray is not installed for", emulator, lake, before)
    assert "pip install 'market-voices-etl[ray]'" in result.stderr
