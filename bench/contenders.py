"""The collectors we are measured against, written the way people write them, each run in its own process.

naive        a loop of `Ticker(s).info` and `.history(period)`, dicts in a list, one DataFrame at the end
batched-gc   the same in 10-symbol batches with minimal dicts and gc.collect() after each batch
yf-download  one threaded `yf.download(all symbols)`, stacked to long format and written with pyarrow

Each uses yfinance's default session (curl_cffi impersonating Chrome, made by yfinance itself) and
takes its route from the environment, as curl does: HTTPS_PROXY (the emulator) and CURL_CA_BUNDLE (its CA).
Nothing of the job is used.
"""

import argparse
import gc
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yfinance as yf


def naive(symbols: list[str], period: str, out_path: Path) -> None:
    rows = []
    for symbol in symbols:
        ticker = yf.Ticker(symbol)
        try:
            info = ticker.info
            history = ticker.history(period=period, auto_adjust=False)
        except Exception:  # a naive loop skips what fails, as the review's collector did
            continue
        for day, bar in history.iterrows():
            rows.append({"symbol": symbol, "date": day.date(), **bar.to_dict(), **info})
    pd.DataFrame(rows).astype(str).to_parquet(out_path)


def batched_gc(symbols: list[str], period: str, out_path: Path) -> None:
    rows = []
    for start in range(0, len(symbols), 10):
        for symbol in symbols[start : start + 10]:
            ticker = yf.Ticker(symbol)
            try:
                info = ticker.info
                history = ticker.history(period=period, auto_adjust=False)
            except Exception:
                continue
            name, cap = info.get("longName"), info.get("marketCap")
            for day, close, volume in zip(history.index, history["Close"], history["Volume"], strict=True):
                rows.append(
                    {
                        "symbol": symbol,
                        "date": day.date(),
                        "close": close,
                        "volume": volume,
                        "name": name,
                        "market_cap": cap,
                    }
                )
        gc.collect()
    pd.DataFrame(rows).to_parquet(out_path)


def yf_download(symbols: list[str], period: str, out_path: Path) -> None:
    frame = yf.download(
        symbols, period=period, threads=True, group_by="ticker", auto_adjust=False, progress=False
    )
    long = frame.stack(level=0, future_stack=True).rename_axis(["date", "symbol"]).reset_index()
    long = long.dropna(subset=["Close"])
    pq.write_table(pa.Table.from_pandas(long, preserve_index=False), out_path)


CONTENDERS = {"naive": naive, "batched-gc": batched_gc, "yf-download": yf_download}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=CONTENDERS)
    parser.add_argument("--universe", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--history", default="1y")
    args = parser.parse_args()
    symbols = args.universe.read_text().split()
    CONTENDERS[args.name](symbols, args.history, args.out)


if __name__ == "__main__":
    main()
