"""E2E fixtures: a freshly started Ferrostack (own state dir, free port) and the real CLI."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid

import pytest
import yaml

BINARY = os.environ.get("FERROSTACK_BIN", "ferrostack")
OPENSTACK = os.environ.get("OPENSTACK_CLI", "openstack")
GUEST_DIR = os.environ.get("FERROSTACK_GUEST_IMAGE_DIR", os.path.expanduser("~/.cache/ferrostack/guest-image"))


def fresh_database(server_url):
    """With a PostgreSQL URL, creates an empty database on that server and returns its URL."""
    if not server_url:
        return None
    name = "fse2e_" + uuid.uuid4().hex[:12]
    subprocess.run(["psql", server_url, "-qc", f"CREATE DATABASE {name}"], check=True)
    return server_url.rsplit("/", 1)[0] + "/" + name


def wait(predicate, timeout, what):
    """The first truthy value of `predicate()`, polled every second for `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def restart(cloud, crash_at=None):
    """Stops the cloud's process if it runs, then starts it (armed with the crash point
    `crash_at` if given: the process aborts there, as a `kill -9` would)."""
    if cloud.proc.poll() is None:
        cloud.proc.terminate()
        cloud.proc.wait(timeout=30)
    cloud.start({"FERROSTACK_CRASH_AT": crash_at} if crash_at else None)


def wait_crashed(cloud):
    """Waits until the cloud's process has hit its crash point (exited, not with 0)."""
    wait(lambda: cloud.proc.poll() is not None, 120, "the process to hit its crash point")
    assert cloud.proc.returncode != 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cloud:
    """A running Ferrostack and a clouds.yaml pointing at it.

    Options (all optional): `command` is the subcommand that runs it (`up`, the all-in-one, or
    `api`, the controller without an agent); `compute_config` holds extra `[compute]` lines;
    `extra_config` is TOML appended after every section (e.g. a `[bus]` section);
    `network_agent` runs this host's network agent (off by default: see below)."""

    def __init__(self, root, command="up", compute_config="", extra_config="", network_agent=False):
        self.root = root
        self.command = command
        # The network agent changes the host's kernel (bridges, namespaces, dnsmasq, nftables)
        # and leaves its data plane running when the cloud stops, as Neutron's agents do: only
        # the tests of that data plane turn it on, and they clean up after it.
        self.network_agent = network_agent
        self.port = free_port()
        self.metadata_port = free_port()
        # Its own console proxy port: a `make up` cloud or another e2e cloud may hold 6080.
        self.console_port = free_port()
        self.host = f"e2e-{self.port}"
        # QEMU runs as its own user: the instances directory must be reachable by it.
        self.instances = tempfile.mkdtemp(prefix="ferrostack-e2e-instances-")
        os.chmod(self.instances, 0o755)
        # Volumes too: QEMU opens the files of attached volumes.
        self.volumes = tempfile.mkdtemp(prefix="ferrostack-e2e-volumes-")
        os.chmod(self.volumes, 0o755)
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = os.path.join(root, "state")
        self.config = os.path.join(root, "ferrostack.toml")
        self.clouds_yaml = os.path.join(root, "clouds.yaml")
        database = fresh_database(os.environ.get("FERROSTACK_E2E_DATABASE_URL"))
        with open(self.config, "w") as f:
            f.write(
                f'state_dir = "{self.state}"\n[api]\nlisten = "127.0.0.1:{self.port}"\n'
                f'public_url = "{self.url}"\n[identity]\npassword_hash_rounds = 4\n'
                # Debug logs: the log-secrecy test must hold at the most verbose level.
                f'[log]\nlevel = "debug"\n'
                # Its own compute host and guest names: other clouds may share this libvirt.
                f'[compute]\nhost = "e2e-{self.port}"\ninstance_name_template = "e2e{self.port}-%08x"\n'
                f'report_interval = 2\nshutdown_timeout = 20\n'
                f'metadata_listen = "127.0.0.1:{self.metadata_port}"\n'
                f'novncproxy_listen = "127.0.0.1:{self.console_port}"\n'
                f'instances_path = "{self.instances}"\n'
                # Without a network agent no port is ever wired: guests do not wait for it.
                + ('' if network_agent else 'vif_plugging_timeout = 0\n') +
                f'{compute_config}'
            )
            if compute_config and not compute_config.endswith("\n"):
                f.write("\n")
            f.write(f'[volume]\nvolumes_dir = "{self.volumes}"\nhost = "e2e-{self.port}"\n')
            f.write(extra_config)
            if database:
                f.write(f'[database]\nurl = "{database}"\n')
        self.log_path = os.path.join(root, "ferrostack.log")
        self.log = open(os.path.join(root, "ferrostack.log"), "w")
        self.start()
        self.admin_password = open(os.path.join(self.state, "admin-password")).read().strip()
        self.demo_password = open(os.path.join(self.state, "demo-password")).read().strip()
        self.clouds = {}
        self.add_cloud("ferrostack", "admin", self.admin_password, "admin")
        self.add_cloud("ferrostack-demo", "demo", self.demo_password, "demo")

    def start(self, extra_env=None):
        """Starts the process (on the same config and state) and waits until it is ready."""
        env = dict(os.environ, FERROSTACK_CONFIG=self.config,
                   FERROSTACK__NETWORK__AGENT="true" if self.network_agent else "false",
                   **(extra_env or {}))
        self.proc = subprocess.Popen([BINARY, self.command], stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self._wait_ready()

    def _wait_ready(self):
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ferrostack exited: see {self.log.name}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("ferrostack did not become ready")

    def add_cloud(self, name, user, password, project=None, **extra_auth):
        auth = {
            "auth_url": self.url + "/identity",
            "username": user,
            "password": password,
            "user_domain_name": "Default",
        }
        if project:
            auth.update(project_name=project, project_domain_name="Default")
        auth.update(extra_auth)
        self.clouds[name] = {"auth": auth, "region_name": "RegionOne", "identity_api_version": 3}
        self._write_clouds()

    def add_raw_cloud(self, name, cloud):
        self.clouds[name] = cloud
        self._write_clouds()

    def _write_clouds(self):
        with open(self.clouds_yaml, "w") as f:
            yaml.safe_dump({"clouds": self.clouds}, f)

    def run(self, cloud, *args, check=True, timeout=120, tty_stdin=False):
        """Runs `openstack --os-cloud CLOUD ARGS`; returns the CompletedProcess.

        `tty_stdin`: give the CLI a terminal as stdin; `image create` without `--file`
        otherwise uploads whatever a non-terminal stdin holds (an empty image)."""
        env = dict(os.environ, OS_CLIENT_CONFIG_FILE=self.clouds_yaml)
        for k in list(env):
            if k.startswith("OS_") and k != "OS_CLIENT_CONFIG_FILE":
                del env[k]
        pty_fds = os.openpty() if tty_stdin else None
        try:
            proc = subprocess.run(
                [OPENSTACK, "--os-cloud", cloud, *args], capture_output=True, text=True, env=env, timeout=timeout,
                **({"stdin": pty_fds[1]} if pty_fds else {}),
            )
        finally:
            for fd in pty_fds or ():
                os.close(fd)
        if check and proc.returncode != 0:
            raise AssertionError(f"openstack {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def json(self, cloud, *args, timeout=120, tty_stdin=False):
        """Runs a command with `-f json` and parses its output."""
        out = self.run(cloud, *args, "-f", "json", timeout=timeout, tty_stdin=tty_stdin).stdout
        return json.loads(out) if out.strip() else None

    def request(self, method, path, token=None, body=None, headers=None):
        """A raw HTTP request; returns (status, headers, parsed body or None)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("X-Auth-Token", token)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
                try:
                    parsed = json.loads(raw) if raw else None
                except ValueError:
                    parsed = raw.decode(errors="replace")
                return r.status, r.headers, parsed
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw.decode(errors="replace")
            return e.code, e.headers, parsed

    def password_token(self, user, password, project=None):
        scope = {"project": {"name": project, "domain": {"id": "default"}}} if project else None
        body = {"auth": {"identity": {"methods": ["password"], "password": {
            "user": {"name": user, "domain": {"id": "default"}, "password": password}}}}}
        if scope:
            body["auth"]["scope"] = scope
        status, headers, data = self.request("POST", "/identity/v3/auth/tokens", body=body)
        assert status == 201, (status, data)
        return headers["X-Subject-Token"], data

    def domains(self):
        """Names of this cloud's libvirt domains (all states)."""
        out = subprocess.run(["virsh", "-q", "-c", "qemu:///system", "list", "--all", "--name"],
                             capture_output=True, text=True)
        return [d for d in out.stdout.split() if d.startswith(f"e2e{self.port}-")]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        # Guests a failed test left behind (only this cloud's, by their name prefix).
        for name in self.domains():
            for cmd in (["destroy", name], ["undefine", name]):
                subprocess.run(["virsh", "-q", "-c", "qemu:///system", *cmd], capture_output=True)


    def remove_files(self):
        """Removes its state (root), instances and volumes directories."""
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.instances, ignore_errors=True)
        shutil.rmtree(self.volumes, ignore_errors=True)

    def log_excerpt(self, warnings=60, tail=30):
        """The last `warnings` WARN/ERROR lines of its log, then its last `tail` lines."""
        try:
            with open(self.log_path, errors="replace") as f:
                lines = f.read().splitlines()
        except OSError as e:
            return f"(no log: {e})"
        flagged = [line for line in lines if " WARN " in line or " ERROR " in line]
        return "\n".join(["-- warnings and errors --", *flagged[-warnings:], "-- last lines --", *lines[-tail:]])


def cloud_with_guest(prefix, image, flavor, ram=256):
    """A fresh cloud (its root a new temporary directory named `prefix`...) with the test guest's
    disk as the public qcow2 image `image` and the flavor `flavor` (`ram` MB, 1 GB disk, 1 vCPU)."""
    c = Cloud(tempfile.mkdtemp(prefix=prefix))
    c.json("ferrostack", "image", "create", "--public", "--disk-format", "qcow2", "--container-format", "bare",
           "--file", os.path.join(GUEST_DIR, "disk.qcow2"), image)
    c.json("ferrostack", "flavor", "create", "--ram", str(ram), "--disk", "1", "--vcpus", "1", flavor)
    return c


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report carries the log excerpt of every cloud it used, so a CI failure
    shows what the cloud said (the state directories are removed afterwards)."""
    report = (yield).get_result()
    if report.failed and report.when in ("setup", "call"):
        for name, value in getattr(item, "funcargs", {}).items():
            if isinstance(value, Cloud):
                report.sections.append((f"ferrostack log of fixture {name!r}", value.log_excerpt()))


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: long-running test (runs by default; deselect with -m 'not slow')"
    )


@pytest.fixture(scope="session")
def cloud():
    root = tempfile.mkdtemp(prefix="ferrostack-e2e-")
    c = Cloud(root)
    yield c
    c.stop()
    if not os.environ.get("FERROSTACK_KEEP_E2E"):
        c.remove_files()


@pytest.fixture
def unique():
    """A short unique suffix for resource names."""
    return uuid.uuid4().hex[:8]
