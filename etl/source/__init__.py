"""The Yahoo Finance source: an HTTP session that routes and counts, and the yfinance adapter."""
