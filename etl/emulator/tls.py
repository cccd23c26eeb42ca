"""Yahoo's TLS edge, emulated: a throwaway CA for Yahoo's names, and a judgment of each ClientHello.

Yahoo tells browsers from scripts by the TLS ClientHello, not the User-Agent: Chrome sends RFC 8701
GREASE values among its cipher suites and extensions and offers `h2` in ALPN; OpenSSL's default
hello (Python's ssl, plain `requests`) does neither. The emulator peeks at the hello before the
handshake and answers a script's connection with 429s, as Yahoo does.
"""

import hashlib
import socket
import ssl
import struct
from dataclasses import dataclass
from pathlib import Path

import trustme

# `*.yahoo.com` alone does not cover query1.finance.yahoo.com: a wildcard spans one label.
YAHOO_NAMES = ("yahoo.com", "*.yahoo.com", "*.finance.yahoo.com")
_HANDSHAKE, _CLIENT_HELLO = 22, 1
_ALPN = 16
# How long a client may take to send its hello once the tunnel is open.
HELLO_TIMEOUT_S = 10


def is_grease(value: int) -> bool:
    """RFC 8701's reserved values: 0x0A0A, 0x1A1A, ... 0xFAFA."""
    return value & 0x0F0F == 0x0A0A and value >> 8 == value & 0xFF


@dataclass(frozen=True)
class ClientHello:
    """What the emulator reads of a ClientHello: cipher suites, extension types, ALPN protocols."""

    ciphers: tuple[int, ...]
    extensions: tuple[int, ...]
    alpn: tuple[str, ...]

    @property
    def is_browser(self) -> bool:
        """GREASE in both the cipher suites and the extensions, and `h2` offered: what Yahoo lets through."""
        return (
            any(map(is_grease, self.ciphers)) and any(map(is_grease, self.extensions)) and "h2" in self.alpn
        )

    @property
    def fingerprint(self) -> str:
        """A JA4-like digest: GREASE dropped and extensions sorted, since Chrome shuffles their order."""
        ciphers = sorted(c for c in self.ciphers if not is_grease(c))
        extensions = sorted(e for e in self.extensions if not is_grease(e))
        text = f"{ciphers}|{extensions}|{','.join(self.alpn)}"
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def parse_client_hello(record: bytes) -> ClientHello | None:
    """The hello in a TLS handshake record, or None if the bytes are not one."""
    try:
        if record[0] != _HANDSHAKE or record[5] != _CLIENT_HELLO:
            return None
        at = 5 + 4 + 2 + 32  # record header, handshake header, legacy version, random
        at += 1 + record[at]  # session id
        (n_bytes,) = struct.unpack_from(">H", record, at)
        ciphers = struct.unpack_from(f">{n_bytes // 2}H", record, at + 2)
        at += 2 + n_bytes
        at += 1 + record[at]  # compression methods
        (n_bytes,) = struct.unpack_from(">H", record, at)
        extensions = _read_extensions(record[at + 2 : at + 2 + n_bytes])
    except (IndexError, struct.error):
        return None
    return ClientHello(ciphers, tuple(extensions), _read_alpn(extensions.get(_ALPN, b"")))


def _read_extensions(block: bytes) -> dict[int, bytes]:
    extensions, at = {}, 0
    while at + 4 <= len(block):
        kind, size = struct.unpack_from(">HH", block, at)
        extensions[kind] = block[at + 4 : at + 4 + size]
        at += 4 + size
    return extensions


def _read_alpn(body: bytes) -> tuple[str, ...]:
    names, at = [], 2  # the list's own length first
    while at < len(body):
        size = body[at]
        names.append(body[at + 1 : at + 1 + size].decode("ascii", "replace"))
        at += 1 + size
    return tuple(names)


def peek_client_hello(sock: socket.socket) -> ClientHello | None:
    """Read the first TLS record without taking it off the socket, so the handshake still sees it."""
    sock.settimeout(None)  # a blocking socket, so MSG_WAITALL waits; SO_RCVTIMEO bounds the wait
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", HELLO_TIMEOUT_S, 0))
    try:
        header = sock.recv(5, socket.MSG_PEEK | socket.MSG_WAITALL)
        if len(header) < 5:
            return None
        (size,) = struct.unpack_from(">H", header, 3)
        record = sock.recv(5 + size, socket.MSG_PEEK | socket.MSG_WAITALL)
    except OSError:
        return None
    finally:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 0))
    return parse_client_hello(record)


class Authority:
    """A CA made at start for this emulator alone, and the server certificate it signs for Yahoo's names."""

    def __init__(self) -> None:
        self._ca = trustme.CA(organization_name="market-voices-etl Yahoo emulator")
        self._cert = self._ca.issue_cert(*YAHOO_NAMES)

    def server_context(self) -> ssl.SSLContext:
        """TLS for Yahoo's hosts; ALPN settles on HTTP/1.1, which curl takes as cleanly as h2."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._cert.configure_cert(context)
        context.set_alpn_protocols(["http/1.1"])
        return context

    def write_ca(self, path: Path) -> Path:
        """The CA's PEM, for the client's --ca-bundle."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._ca.cert_pem.write_to_path(str(path))
        return path
