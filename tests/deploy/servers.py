"""Real servers on loopback for the deployment tests: an S3-compatible store and PostgreSQL.

* :class:`S3Server` -- ``moto[server]`` (a dev dependency) in its own process on a free port of
  127.0.0.1; deltalake talks to it as to any S3-compatible store.
* :class:`PostgresServer` -- Debian's PostgreSQL binaries, ``initdb`` into a fresh directory, listening
  on 127.0.0.1 only, password authentication. ``initdb`` refuses to run as root, so as root the cluster
  belongs to the ``postgres`` user the Debian package creates (``runuser``).

Both stop their process (and only it) when the test ends.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest

from risk_runtime.storage import STORAGE_OPTIONS_ENV
from risk_runtime.table import LAKE_ROOT_ENV

POSTGRES_INSTALL_HINT: Final = (
    "PostgreSQL server binaries not found: install them with `apt-get install -y postgresql` "
    "(Debian/Ubuntu, as root; .ci/run does it) to run the Postgres instance tests"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# ---------------------------------------------------------------------------------------------- S3
@dataclass
class S3Server:
    """An S3-compatible endpoint (moto) on 127.0.0.1; any key and secret are accepted."""

    endpoint: str
    region: str = "us-east-1"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @classmethod
    @contextlib.contextmanager
    def running(cls, log: Path) -> Iterator[S3Server]:
        port = free_port()
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        server = cls(endpoint=f"http://127.0.0.1:{port}", process=process)
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"moto server exited with {process.returncode}: {log.read_text()[-2000:]}")
                try:
                    urllib.request.urlopen(f"{server.endpoint}/moto-api/", timeout=2).close()
                    break
                except (urllib.error.URLError, OSError):
                    if time.monotonic() > deadline:
                        raise RuntimeError("moto server did not answer within 60 s") from None
                    time.sleep(0.2)
            yield server
        finally:
            _stop(process)

    def client(self, key: str = "test", secret: str = "test") -> Any:
        import boto3  # moto's own dependency: only the tests use it, to make buckets and read raw objects

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
        )

    def make_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        """Every object under ``prefix``, by key: what a reader of the raw store would see."""
        client = self.client()
        found: dict[str, bytes] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                found[item["Key"]] = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        return found

    def storage_options(self, key: str, secret: str) -> dict[str, str]:
        """Everything deltalake needs to reach this server, as storage options."""
        return {
            "aws_endpoint_url": self.endpoint,
            "aws_allow_http": "true",
            "aws_region": self.region,
            "aws_access_key_id": key,
            "aws_secret_access_key": secret,
        }

    def aws_environment(self, key: str, secret: str) -> dict[str, str]:
        """The same as ``AWS_*`` environment variables, the other way deployments configure a store."""
        return {name.upper(): value for name, value in self.storage_options(key, secret).items()}


def configure_store(s3: S3Server, bucket: str, how: str, secret: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point this process (and so every child) at ``s3://bucket/lake``, credentials given only ``how``."""
    for name in list(os.environ):
        if name.startswith("AWS_") or name == STORAGE_OPTIONS_ENV:
            monkeypatch.delenv(name)
    if how == "storage_options":
        monkeypatch.setenv(STORAGE_OPTIONS_ENV, json.dumps(s3.storage_options("risk-key", secret)))
    else:
        for name, value in s3.aws_environment("risk-key", secret).items():
            monkeypatch.setenv(name, value)
    root = f"s3://{bucket}/lake"
    monkeypatch.setenv(LAKE_ROOT_ENV, root)
    return root


# ---------------------------------------------------------------------------------------------- PostgreSQL
def postgres_bin() -> Path | None:
    """The directory of Debian's PostgreSQL server binaries (newest version), if installed."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if candidates:
        return Path(candidates[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).resolve().parent if on_path else None


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    data_dir: Path

    def connect(self, database: str = "postgres") -> Any:
        import psycopg2  # from the `postgres` extra (dagster-postgres brings it)

        connection = psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=database
        )
        connection.autocommit = True
        return connection

    def create_database(self, name: str) -> str:
        with contextlib.closing(self.connect()) as connection, connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        return name

    def scalar(self, database: str, sql: str) -> Any:
        with contextlib.closing(self.connect(database)) as connection, connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone()[0]

    @classmethod
    @contextlib.contextmanager
    def running(cls, binaries: Path, password: str) -> Iterator[PostgresServer]:
        as_root = os.geteuid() == 0
        owner = "postgres" if as_root else None
        # Not under pytest's tmp_path: that is private to the test's user, and the cluster's owner must reach it.
        base = Path(tempfile.mkdtemp(prefix="risk-pg-"))
        data_dir, pwfile = base / "data", base / "pwfile"
        pwfile.write_text(password + "\n")
        if owner:
            shutil.chown(base, owner)
            shutil.chown(pwfile, owner)
        prefix = ["runuser", "-u", owner, "--"] if owner else []
        port = free_port()
        user = "risk_admin"

        def run(*command: str) -> None:
            done = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=120, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"{command[0]} failed: {done.stdout}{done.stderr}")

        run(
            str(binaries / "initdb"),
            "-D",
            str(data_dir),
            "-U",
            user,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        )
        options = f"-p {port} -c listen_addresses=127.0.0.1 -k {base} -c fsync=off"
        run(str(binaries / "pg_ctl"), "-D", str(data_dir), "-o", options, "-l", str(base / "server.log"), "-w", "start")
        try:
            yield cls(host="127.0.0.1", port=port, user=user, password=password, data_dir=data_dir)
        finally:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                run(str(binaries / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop")
            shutil.rmtree(base, ignore_errors=True)
