"""The lake in an S3 bucket (AWS, MinIO, R2, Ceph), through obstore: conditional puts, retried with backoff.

obstore (Rust object_store) rather than boto3: its create-only put (`If-None-Match: *`) and compare-and-swap
(`If-Match`) are one keyword, it retries 5xx, resets and timeouts itself, and it costs the collector 8 MB
of RSS where boto3 costs 37. It reads the standard AWS environment (keys, AWS_REGION,
AWS_ENDPOINT_URL[_S3], AWS_ALLOW_HTTP); a named profile (AWS_PROFILE, ~/.aws) goes through boto3's chain.
"""

import contextlib
import datetime as dt
import logging
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import obstore
from obstore.exceptions import (
    AlreadyExistsError,
    PermissionDeniedError,
    PreconditionError,
    UnauthenticatedError,
)
from obstore.store import S3Store as _ObjectStore

from etl.config import STORE_CONNECT_TIMEOUT_S, STORE_MAX_RETRIES, STORE_RETRY_TIMEOUT_S, STORE_TIMEOUT_S
from etl.lake.store import LeaseLost, ObjectExists, StoreError, require_same_bytes

T = TypeVar("T")
log = logging.getLogger(__name__)

# How reqwest reports a request whose connection was reset or closed before the answer came.
_CONNECTION_LOST = ("error sending request", "connection closed", "Interrupted", "reset by peer")
# Where obstore asks for an instance's role when it finds no credentials in the environment.
_INSTANCE_METADATA = "/latest/api/token"
_CREDENTIALS_REFUSED = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken")
# How S3 and its look-alikes answer a create that races another: 412, or 409 while the other is in flight.
_CONFLICT_CODES = ("ConditionalRequestConflict", "409 Conflict")


@dataclass(frozen=True)
class Listed:
    """An object as a listing gives it."""

    key: str
    size: int
    modified_at: dt.datetime


class S3Store:
    """A bucket, keys under `prefix` (the lake's parent prefix, "" at the bucket's top)."""

    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self._store = _ObjectStore(bucket, **store_options())

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def put_new(self, key: str, data: bytes) -> None:
        try:
            self._put(key, data, "create")
        except ObjectExists:
            require_same_bytes(self, key, data)

    def create(self, key: str, data: bytes) -> str:
        """Create the object; its ETag. ObjectExists if there is one, whatever its bytes."""
        return self._put(key, data, "create")

    def replace(self, key: str, data: bytes, e_tag: str) -> str:
        """Replace the object if it is still the version `e_tag`; its new ETag. LeaseLost otherwise."""
        return self._put(key, data, {"e_tag": e_tag})

    def get(self, key: str) -> bytes:
        return self.get_with_tag(key)[0]

    def get_with_tag(self, key: str) -> tuple[bytes, str]:
        """The object's bytes and ETag; FileNotFoundError if there is none."""
        with self._errors("reading", key):
            result = obstore.get(self._store, self._key(key))
            return bytes(result.bytes()), result.meta["e_tag"] or ""

    def list_keys(self, prefix: str) -> list[str]:
        return [listed.key for listed in self.list_objects(prefix)]

    def list_objects(self, prefix: str) -> list[Listed]:
        """The objects under `prefix`, with their sizes and dates, sorted by key."""
        start = len(self._key(""))
        with self._errors("listing", prefix):
            listed = [
                Listed(meta["path"][start:], meta["size"], meta["last_modified"])
                for chunk in obstore.list(self._store, prefix=self._key(prefix))
                for meta in chunk
            ]
        return sorted(listed, key=lambda item: item.key)

    def delete(self, keys: list[str]) -> None:
        if keys:
            with self._errors("removing", keys[0]):
                _resent_on_reset(lambda: obstore.delete(self._store, [self._key(key) for key in keys]))

    def _put(self, key: str, data: bytes, mode) -> str:
        with self._errors("writing", key):
            try:
                result = _resent_on_reset(
                    lambda: obstore.put(self._store, self._key(key), data, mode=mode, use_multipart=False)
                )
            except AlreadyExistsError as exc:
                raise ObjectExists(f"{self.url(key)} already exists") from exc
            except obstore.exceptions.GenericError as exc:
                if any(code in str(exc) for code in _CONFLICT_CODES):
                    raise ObjectExists(f"{self.url(key)} already exists") from exc
                raise
            except PreconditionError as exc:
                raise LeaseLost(f"{self.url(key)} was changed by another writer") from exc
            return result["e_tag"] or ""

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextlib.contextmanager
    def _errors(self, doing: str, key: str) -> Iterator[None]:
        """obstore's errors as one line naming the object and the cause; a missing object stays
        FileNotFoundError, for the caller to judge."""
        try:
            yield
        except StoreError:
            raise
        except FileNotFoundError as exc:
            if "NoSuchBucket" not in str(exc):
                raise
            raise self._to_store_error(doing, key, exc) from exc
        except (obstore.exceptions.BaseError, OSError, ValueError) as exc:
            raise self._to_store_error(doing, key, exc) from exc

    def _to_store_error(self, doing: str, key: str, exc: BaseException) -> StoreError:
        return StoreError(f"{doing} {self.url(key)} failed ({describe_store_error(exc, self.bucket)})")


def store_options() -> dict:
    """How obstore reaches the bucket, for the job's writes and DuckDB's reads alike: timeouts, retries, and
    the credentials of a named profile."""
    return {
        # Client options given here replace those obstore reads from the environment: AWS_ALLOW_HTTP too.
        "client_options": {
            "timeout": dt.timedelta(seconds=STORE_TIMEOUT_S),
            "connect_timeout": dt.timedelta(seconds=STORE_CONNECT_TIMEOUT_S),
            "allow_http": os.environ.get("AWS_ALLOW_HTTP", "").lower() == "true",
        },
        "retry_config": {
            "max_retries": STORE_MAX_RETRIES,
            "retry_timeout": dt.timedelta(seconds=STORE_RETRY_TIMEOUT_S),
        },
        "credential_provider": _profile_credentials(),
    }


def _resent_on_reset(request: Callable[[], T]) -> T:
    """obstore retries 5xx and timeouts of every request, but a conditional put or a delete whose connection
    dropped it does not: they are sent again here, with backoff. A put that had landed then meets itself,
    which put_new and the lease recognise."""
    attempt = 0
    while True:
        try:
            return request()
        except obstore.exceptions.GenericError as exc:
            text = str(exc)
            retried = re.search(r"after (\d+) retries", text)  # obstore's own, for the 5xx met on the way
            exhausted = retried is not None and int(retried.group(1)) >= STORE_MAX_RETRIES
            if (
                attempt >= STORE_MAX_RETRIES
                or exhausted
                or not any(sign in text for sign in _CONNECTION_LOST)
            ):
                raise
            log.info("store connection lost (%s); sending again", str(exc).splitlines()[0][:200])
            time.sleep(min(0.1 * 2**attempt, 5.0) * random.uniform(0.5, 1.0))
            attempt += 1


def describe_store_error(exc: BaseException, bucket: str) -> str:
    """Why a request to the store failed, in a few words; never a credential."""
    text = str(exc)
    if "NoSuchBucket" in text:
        return f"bucket {bucket} does not exist; create it, or check AWS_ENDPOINT_URL"
    # S3 answers 403 to unknown keys and bad signatures as to a denied action: its code tells them apart.
    if isinstance(exc, UnauthenticatedError) or any(code in text for code in _CREDENTIALS_REFUSED):
        return "the store refused these credentials; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    if isinstance(exc, PermissionDeniedError) or "AccessDenied" in text:
        return f"access denied to bucket {bucket}; these credentials may not write there"
    if "credential" in text.lower() or _INSTANCE_METADATA in text:
        return "no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _profile_credentials():
    """boto3's credential chain, for a named profile or ~/.aws; None: obstore reads the environment itself."""
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        return None
    profile = os.environ.get("AWS_PROFILE")
    if not profile and not Path("~/.aws/credentials").expanduser().is_file():
        return None
    import boto3  # only for a profile: 37 MB of RSS that environment credentials never pay
    from obstore.auth.boto3 import Boto3CredentialProvider

    return Boto3CredentialProvider(boto3.Session(profile_name=profile or None))
