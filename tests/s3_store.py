"""The loopback S3 store of the tests and bench: moto in server mode on 127.0.0.1, refusing bad credentials.

`LoopbackS3` runs moto's S3 and IAM over real HTTP on a free loopback port, with IAM enforcement on, so a
client is refused as real S3 would refuse it:

| role           | credentials                        | refused with (S3 error code, HTTP 403)   |
|----------------|------------------------------------|------------------------------------------|
| `writer`       | an IAM user allowed `s3:*`         | nothing                                  |
| `reader`       | `s3:GetObject` and `s3:ListBucket` | `AccessDenied` on a PUT                  |
| `wrong-secret` | the writer's key id, a bad secret  | `SignatureDoesNotMatch` on every request |
| `unknown-key`  | a key id that no user has          | `InvalidAccessKeyId` on every request    |

    with LoopbackS3() as s3:
        bucket = s3.new_bucket()
        os.environ.update(s3.env("reader"))

The server runs in a process of its own (`python tests/s3_store.py`, which prints its address and keys and
serves until its stdin closes, as it does when the test process dies): moto is Python, and in the test's
own process it would share one interpreter lock with the readers a test runs against it. In that process,
`ServedS3` holds moto's process-wide state: its backends and its IAM switch
(`moto.settings.INITIAL_NO_AUTH_ACTION_COUNT`), so one store a process, which the lock below enforces.
"""

import json
import logging
import secrets
import subprocess
import sys
import threading
import urllib.request
from contextlib import ExitStack
from enum import StrEnum
from typing import Any, Self

import boto3
from moto.core.authorization import enable_iam_authentication
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
# moto accepts any key while enforcement is off; these only sign the setup requests that create the users.
_SETUP_KEY = ("setup", "setup")
# No IAM user has it: moto generates AKIA + 16 random characters, this one is spelled to stand out.
_UNKNOWN_KEY = ("AKIAUNKNOWNKEY000000", "not-a-secret-of-any-user-0000000000000000")
_POLICIES = {
    "writer": ["s3:*"],
    "reader": ["s3:GetObject", "s3:ListBucket"],
}
# Held while a store runs: the backends and the IAM switch it sets are the whole process's.
_running = threading.Lock()


class Role(StrEnum):
    """Whose credentials `LoopbackS3.env` gives."""

    WRITER = "writer"
    READER = "reader"
    WRONG_SECRET = "wrong-secret"
    UNKNOWN_KEY = "unknown-key"


class LoopbackS3:
    """The store in a child process; its address, its roles' credentials, and buckets made as the writer."""

    def __init__(self) -> None:
        self._child: subprocess.Popen | None = None
        self._endpoint_url = ""
        self._keys: dict[Role, tuple[str, str]] = {}
        self._writer: Any = None

    def __enter__(self) -> Self:
        self._child = subprocess.Popen(
            [sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        served = json.loads(self._child.stdout.readline() if self._child.stdout else "")
        self._endpoint_url = served["endpoint_url"]
        self._keys = {Role(role): (key_id, secret) for role, (key_id, secret) in served["keys"].items()}
        self._writer = _client(self._endpoint_url, "s3", *self._keys[Role.WRITER])
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._child and self._child.stdin:
            self._child.stdin.close()  # the child stops its server and exits
            self._child.wait(timeout=30)

    @property
    def endpoint_url(self) -> str:
        """http://127.0.0.1:PORT, the store's own address."""
        return self._endpoint_url

    def new_bucket(self, name: str | None = None) -> str:
        """Create a bucket as the writer (named `name`, else a fresh unique name) and return its name."""
        bucket = name or f"lake-{secrets.token_hex(6)}"
        self._writer.create_bucket(Bucket=bucket)
        return bucket

    def env(self, role: str = Role.WRITER, endpoint_url: str | None = None) -> dict[str, str]:
        """The AWS_* variables that point obstore, s3fs and boto3 at the store (or at `endpoint_url`, a
        fault proxy's in front of it) with the credentials of `role`."""
        key_id, secret = self._keys[Role(role)]
        return {
            "AWS_ACCESS_KEY_ID": key_id,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": endpoint_url or self._endpoint_url,
            "AWS_ALLOW_HTTP": "true",
            # boto3 would otherwise ask 169.254.169.254 for credentials it does not find elsewhere.
            "AWS_EC2_METADATA_DISABLED": "true",
        }


class ServedS3:
    """moto's S3 on 127.0.0.1 and a free port, with IAM users `writer` and `reader` and enforcement on."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._endpoint_url = ""
        self._keys: dict[Role, tuple[str, str]] = {}

    def __enter__(self) -> Self:
        if not _running.acquire(blocking=False):
            raise RuntimeError("a LoopbackS3 already runs in this process; moto's backends are process-wide")
        with ExitStack() as stack:
            stack.callback(_running.release)
            # werkzeug logs every request of moto's server on stderr.
            logging.getLogger("werkzeug").setLevel(logging.ERROR)
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            server.start()
            stack.callback(server.stop)
            host, port = server.get_host_and_port()
            self._endpoint_url = f"http://{host}:{port}"
            stack.callback(self._reset_backends)
            self._keys = self._create_users()
            stack.enter_context(enable_iam_authentication())
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def to_json(self) -> str:
        """What the parent reads: the address, and each role's key id and secret."""
        return json.dumps({"endpoint_url": self._endpoint_url, "keys": self._keys})

    def _create_users(self) -> dict[Role, tuple[str, str]]:
        """The IAM users with their policies and access keys, created while enforcement is still off."""
        iam = _client(self._endpoint_url, "iam", *_SETUP_KEY)
        keys = {Role(name): _create_user(iam, name, actions) for name, actions in _POLICIES.items()}
        keys[Role.WRONG_SECRET] = (keys[Role.WRITER][0], "wrong-" + keys[Role.WRITER][1][6:])
        keys[Role.UNKNOWN_KEY] = _UNKNOWN_KEY
        return keys

    def _reset_backends(self) -> None:
        """Empty moto's process-wide backends, through moto's own reset endpoint."""
        request = urllib.request.Request(f"{self._endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass


def _create_user(iam: Any, name: str, actions: list[str]) -> tuple[str, str]:
    """An IAM user allowed `actions` on every resource; its access key id and secret."""
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName=f"{name}-s3", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def _client(endpoint_url: str, service: str, key_id: str, secret: str) -> Any:
    session = boto3.session.Session(
        aws_access_key_id=key_id, aws_secret_access_key=secret, region_name=REGION
    )
    return session.client(service, endpoint_url=endpoint_url)


if __name__ == "__main__":
    with ServedS3() as served:
        print(served.to_json(), flush=True)
        sys.stdin.read()  # until the parent closes it, or dies
