"""Yahoo's cookie and crumb handshake: signed cookies, so that any emulator, in any process and after any
restart, takes a cookie yfinance cached a year ago for its own and gives it the same crumb."""

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from email.utils import format_datetime

COOKIE_MAX_AGE_S = 31_557_600  # what Yahoo gives its A1/A3 cookies: a year
# One key for every emulator, whatever its seed: Yahoo's servers all accept a Yahoo cookie, and yfinance
# keeps one for a year in a cache shared by every process of the user.
_COOKIE_KEY = b"market-voices-etl yahoo emulator"
_COOKIE = re.compile(r"d=AQABB(?P<session>[\w-]+)&S=AQAAA(?P<signature>[\w-]+)")


def cookie_headers() -> list[tuple[str, str]]:
    """The Set-Cookie headers of Yahoo's answer to a visit: one new cookie as A1, A3 and A1S."""
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=COOKIE_MAX_AGE_S)
    attributes = (
        f"Expires={format_datetime(expiry, usegmt=True)}; Max-Age={COOKIE_MAX_AGE_S}; "
        "Domain=.yahoo.com; Path=/; SameSite=None; Secure"
    )
    value = issue_cookie()
    return [
        ("Set-Cookie", f"{name}={value}; {attributes}{'' if name == 'A1S' else '; HttpOnly'}")
        for name in ("A1", "A3", "A1S")
    ]


def issue_cookie() -> str:
    """A random session id with its signature, so that any emulator recognises the cookie as its own."""
    session = secrets.token_urlsafe(24)
    return f"d=AQABB{session}&S=AQAAA{_sign(session)[:22]}"


def crumb_for(cookie: str | None) -> str | None:
    """The crumb Yahoo ties to a cookie it issued (the same cookie always gets the same crumb), else None."""
    match = _COOKIE.fullmatch(cookie or "")
    if match is None or not hmac.compare_digest(match["signature"], _sign(match["session"])[:22]):
        return None
    return _sign("crumb:" + match["session"])[:11]


def _sign(text: str) -> str:
    digest = hmac.new(_COOKIE_KEY, text.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()
