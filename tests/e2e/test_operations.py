"""Operator commands and process behaviour: config, Fernet rotation, metrics, shutdown."""
import os
import signal
import subprocess
import tempfile
import time

from conftest import BINARY, Cloud


def ferrostack(cloud, *args, env=None):
    full_env = dict(os.environ, FERROSTACK_CONFIG=cloud.config, **(env or {}))
    return subprocess.run([BINARY, *args], capture_output=True, text=True, env=full_env, timeout=60)


def test_config_show_merges_file_and_environment(cloud):
    out = ferrostack(cloud, "config", "show", env={"FERROSTACK__IDENTITY__TOKEN_EXPIRATION": "120"})
    assert out.returncode == 0, out.stderr
    assert f'public_url = "{cloud.url}"' in out.stdout
    assert "token_expiration = 120" in out.stdout
    assert "password_hash_rounds = 4" in out.stdout


def test_config_rejects_unknown_keys(cloud):
    out = ferrostack(cloud, "config", "show", env={"FERROSTACK__API__LISTN": "x"})
    assert out.returncode != 0 and "listn" in out.stderr


def test_fernet_rotation_keeps_issued_tokens_valid(cloud):
    old_token, _ = cloud.password_token("admin", cloud.admin_password, "admin")
    out = ferrostack(cloud, "identity", "fernet-rotate")
    assert out.returncode == 0 and "primary key is now" in out.stdout, out.stderr
    keys = sorted(int(k) for k in os.listdir(os.path.join(cloud.state, "fernet-keys")) if k.isdigit())
    assert keys[0] == 0 and len(keys) >= 3
    time.sleep(1.1)  # the service re-reads the key repository at most once a second
    new_token, _ = cloud.password_token("admin", cloud.admin_password, "admin")
    for token in (old_token, new_token):
        status, _, body = cloud.request("GET", "/identity/v3/auth/tokens", token=new_token,
                                        headers={"X-Subject-Token": token})
        assert status == 200, body


def test_metrics_count_requests(cloud):
    cloud.request("GET", "/identity")
    status, _, text = cloud.request("GET", "/metrics")
    assert status == 200
    assert 'ferrostack_http_requests_total{service="identity",method="GET",status="300"}' in text


def test_sigterm_stops_gracefully():
    root = tempfile.mkdtemp(prefix="ferrostack-e2e-stop-")
    other = Cloud(root)
    try:
        assert other.request("GET", "/healthz")[0] == 200
        other.proc.send_signal(signal.SIGTERM)
        assert other.proc.wait(timeout=30) == 0
        other.log.flush()
        assert "stopped" in open(other.log_path).read()
    finally:
        if other.proc.poll() is None:
            other.proc.kill()
