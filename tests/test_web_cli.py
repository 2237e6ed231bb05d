"""`cibwatch users ...` and `cibwatch serve` as a user runs them."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from test_web_world import build_workspace
from typer.testing import CliRunner

import cibwatch
from cibwatch.cli import app

BIN = Path(sys.executable).parent / "cibwatch"


def test_users_add_list_token(tmp_path):
    ws = tmp_path / "ws.duckdb"
    runner = CliRunner()
    r = runner.invoke(app, ["users", "add", "carol", "--role", "viewer", "--password-stdin",
                            "--workspace", str(ws)], input="carol-password-1\n")
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["users", "list", "--workspace", str(ws)])
    assert r.exit_code == 0 and "carol" in r.output and "viewer" in r.output
    r = runner.invoke(app, ["users", "token", "carol", "--label", "ci", "--workspace", str(ws)])
    assert r.exit_code == 0
    token = r.output.strip()
    assert token.startswith("cibw_") and len(token) > 40
    with cibwatch.open(ws) as w:
        stored = w.con.execute("SELECT token_hash, user_name FROM api_tokens").fetchall()
        hashes = w.con.execute("SELECT password_hash FROM users").fetchall()
        log = [(e["action"], e["target"]) for e in cibwatch.audit.entries(w.con)]
    assert stored[0][1] == "carol" and token not in stored[0][0]
    assert hashes[0][0].startswith("$argon2id$")
    assert ("token.mint", "user:carol") in log and ("user.add", "user:carol") in log


def test_users_errors_are_one_line(tmp_path):
    ws = tmp_path / "ws.duckdb"
    env = {**os.environ, "COLUMNS": "200"}
    r = subprocess.run([str(BIN), "users", "add", "dave", "--role", "boss", "--password-stdin",
                        "--workspace", str(ws)], input="dave-password-1\n",
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2 and "role 'boss'" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([str(BIN), "users", "token", "nobody", "--workspace", str(ws)],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2 and "no such user" in r.stderr and "Traceback" not in r.stderr


def test_serve_binds_loopback_and_requires_login(tmp_path):
    ws = build_workspace(tmp_path / "ws.duckdb")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(BIN), "serve", "--workspace", str(ws), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/operations", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.time() < deadline, proc.stderr.read()
                time.sleep(0.2)
        assert r.status_code == 401
        if shutil.which("ss"):  # the listening socket is bound to loopback only
            listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"],
                                       capture_output=True, text=True).stdout.split()
            assert listening[3] == f"127.0.0.1:{port}"
        other = _other_address()
        if other:
            with pytest.raises(httpx.TransportError):
                httpx.get(f"http://{other}:{port}/login", timeout=2)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/" in out


def _other_address() -> str | None:
    """A non-loopback address of this machine, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET: no packet is sent for UDP connect
            addr = s.getsockname()[0]
        except OSError:
            return None
    return None if addr.startswith("127.") else addr
