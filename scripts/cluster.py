#!/usr/bin/env python3
"""`make cluster`: Triton in production shape on one machine, in the foreground, on loopback.

    nginx https://127.0.0.1:$PORT (wss:// on /ws/; http://127.0.0.1:$HTTP_PORT redirects there)
      ->  WEB_PROCESSES (default 2) server processes (scripts/serve.sh: uvicorn, or daphne with
          TRITON_SERVER=daphne) on free loopback ports
    a Celery worker and a Celery beat
    the machine's MariaDB and Redis (scripts/ensure-services.sh), with the cluster's own
    database (CLUSTER_DATABASE, default triton_cluster) and key prefix (CLUSTER_PREFIX,
    default triton-cluster) so it shares nothing with `make test` or another cluster.

Honours what `make run` honours: PORT (default 8000), DJANGO_SUPERUSER_EMAIL / _PASSWORD /
_NAME. DATABASE_URL, REDIS_URL and CELERY_BROKER_URL override the machine's services. nginx
(Debian package) is installed when missing. /metrics aggregates every process
(prometheus_client multiprocess mode, one directory per cluster run).

TLS: TLS_CERT_FILE and TLS_KEY_FILE (PEM) name the certificate nginx serves; without them a
self-signed one for localhost and 127.0.0.1 is generated under $CLUSTER_VAR_DIR/tls/ and reused
while it has more than RENEW_BEFORE left. HTTP_PORT (default PORT + 1) answers plain HTTP with
a redirect to HTTPS. nginx reaches the servers from PROXY_ADDRESS, the only peer whose
X-Forwarded-Proto they believe (TRUSTED_PROXY_NETWORKS).

Ctrl-C (SIGINT) or SIGTERM stops every process this script started; so does the death of any
one of them (the cluster is then not what it claims to be). Children also get SIGTERM if this
supervisor is killed outright (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = VENV_BIN / "python"
TEMPLATE = ROOT / "compose" / "nginx" / "cluster.conf.template"
STOP_GRACE = 10.0
PR_SET_PDEATHSIG = 1
# nginx connects to the servers from this loopback address (proxy_bind); the servers believe
# X-Forwarded-Proto from it only, not from another local process on 127.0.0.1.
PROXY_ADDRESS = "127.0.0.2"
# The generated certificate: the names a browser or client on this machine uses.
LOCAL_DNS_NAMES = ("localhost",)
LOCAL_ADDRESSES = ("127.0.0.1",)
CERTIFICATE_DAYS = 365
RENEW_BEFORE = datetime.timedelta(days=30)


def log(message: str) -> None:
    print(f">> {message}", flush=True)


def warn(message: str) -> None:
    print(f"!! {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the supervisor dies, even by SIGKILL."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        # Own process group: the terminal's Ctrl-C reaches the supervisor only, which then
        # stops the children in order (servers first, the broker's consumers after).
        self.proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # no threads exist yet in this process
        )

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # The whole group: servers, nginx and Celery fork workers of their own.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)

    def wait_or_kill(self, deadline: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            warn(f"{self.name} (pid {self.proc.pid}) did not stop in {STOP_GRACE:.0f} s: killing")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        # Stragglers of the group (a Celery pool child that outlived its parent).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


class Stop(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


def _on_signal(signum: int, _frame: object) -> None:
    raise Stop(128 + signum)


def run(argv: list[str], env: dict[str, str]) -> None:
    subprocess.run(argv, cwd=ROOT, env=env, check=True, stdin=subprocess.DEVNULL)


def ensure_nginx() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("!! nginx is not installed and this is not root: apt-get install nginx")
    log("installing nginx (Debian package nginx-light)")
    apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "nginx-light"]
    if subprocess.run(install, env=apt_env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=apt_env, check=True)
        subprocess.run(install, env=apt_env, check=True)
    return shutil.which("nginx") or "/usr/sbin/nginx"


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def create_database(database_url: str) -> None:
    """CREATE DATABASE IF NOT EXISTS, connecting to the server named by the URL."""
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    program = (
        "import sys, pymysql\n"
        "c = pymysql.connect(host=sys.argv[1], port=int(sys.argv[2]), user=sys.argv[3],"
        " password=sys.argv[4], connect_timeout=5)\n"
        "c.cursor().execute('CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4"
        " COLLATE utf8mb4_unicode_ci' % sys.argv[5].replace('`', ''))\n"
    )
    subprocess.run(
        [
            str(PYTHON),
            "-c",
            program,
            parts.hostname or "127.0.0.1",
            str(parts.port or 3306),
            parts.username or "root",
            parts.password or "",
            name,
        ],
        check=True,
    )


def wait_http(
    url: str, timeout: float, children: list[Child], context: ssl.SSLContext | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in children:
            if child.exited() is not None:
                raise SystemExit(f"!! {child.name} exited at start-up with {child.exited()}")
        try:
            # Our own loopback URL (S310).
            with urllib.request.urlopen(url, timeout=2, context=context):  # noqa: S310
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer (503 for a dependency still starting) means it is up
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"!! {url} did not answer within {timeout:.0f} s")


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    generated: bool


def certificate_fits(cert_file: Path, key_file: Path) -> bool:
    """The generated certificate can be used again: readable, names localhost and 127.0.0.1,
    more than RENEW_BEFORE left, and its key is there."""
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    except (OSError, ValueError):
        return False
    if cert.public_key() != key.public_key():
        return False
    left = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    if left < RENEW_BEFORE:
        return False
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    addresses = {str(a) for a in names.get_values_for_type(x509.IPAddress)}
    return (
        set(LOCAL_DNS_NAMES) <= set(names.get_values_for_type(x509.DNSName))
        and set(LOCAL_ADDRESSES) <= addresses
    )


def generate_certificate(cert_file: Path, key_file: Path) -> None:
    """A self-signed P-256 certificate for localhost and 127.0.0.1 (its own trust anchor: give
    it to a client as the CA file). The key is written readable by its owner only."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Triton make cluster"),
            x509.NameAttribute(NameOID.COMMON_NAME, LOCAL_DNS_NAMES[0]),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in LOCAL_DNS_NAMES]
    alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in LOCAL_ADDRESSES]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERTIFICATE_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file.parent.mkdir(parents=True, exist_ok=True)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Written next to their final names, then renamed: a reader never sees half a file.
    key_tmp = key_file.with_name(key_file.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        key_tmp.unlink()
    fd = os.open(key_tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key_pem)
    cert_tmp = cert_file.with_name(cert_file.name + ".tmp")
    cert_tmp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_tmp.replace(key_file)
    cert_tmp.replace(cert_file)


def tls_files(var_dir: Path) -> TlsFiles:
    """TLS_CERT_FILE and TLS_KEY_FILE when given, else the generated pair under var_dir/tls."""
    given_cert = os.environ.get("TLS_CERT_FILE", "")
    given_key = os.environ.get("TLS_KEY_FILE", "")
    if given_cert or given_key:
        if not (given_cert and given_key):
            raise SystemExit("!! set both TLS_CERT_FILE and TLS_KEY_FILE, or neither")
        files = TlsFiles(Path(given_cert).resolve(), Path(given_key).resolve(), generated=False)
        for path in (files.cert, files.key):
            if not path.is_file():
                raise SystemExit(f"!! {path} does not exist")
        return files
    files = TlsFiles(var_dir / "tls" / "cert.pem", var_dir / "tls" / "key.pem", generated=True)
    if certificate_fits(files.cert, files.key):
        log(f"TLS certificate {files.cert} (reused)")
    else:
        generate_certificate(files.cert, files.key)
        log(
            f"TLS certificate {files.cert} (generated for {', '.join(LOCAL_DNS_NAMES)} and "
            f"{', '.join(LOCAL_ADDRESSES)}, {CERTIFICATE_DAYS} days)"
        )
    return files


def cluster_environment(port: int, run_dir: Path) -> dict[str, str]:
    prefix = os.environ.get("CLUSTER_PREFIX", "triton-cluster")
    database = os.environ.get("CLUSTER_DATABASE", "triton_cluster")
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    database_url = env.get("DATABASE_URL") or with_database(
        "mysql://root@127.0.0.1:3306/", database
    )
    redis_url = env.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "backend.settings",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": env.get("CELERY_BROKER_URL") or redis_url,
            "CACHE_KEY_PREFIX": env.get("CACHE_KEY_PREFIX") or prefix,
            "CHANNEL_LAYER_PREFIX": env.get("CHANNEL_LAYER_PREFIX") or prefix,
            "REALTIME_KEY_PREFIX": env.get("REALTIME_KEY_PREFIX") or f"{prefix}:rt",
            "CELERY_QUEUE": env.get("CELERY_QUEUE") or prefix,
            "TRITON_VAR_DIR": str(run_dir.parent),
            "STATIC_ROOT": str(run_dir.parent / "static"),
            "MEDIA_ROOT": str(run_dir.parent / "media"),
            # nginx serves /static/ and stands in front: one proxy in X-Forwarded-For.
            "SERVE_STATIC": "false",
            "NUM_PROXIES": "1",
            "PROMETHEUS_MULTIPROC_DIR": str(run_dir / "prometheus"),
            "PYTHONUNBUFFERED": "1",
            "LOG_FORMAT": env.get("LOG_FORMAT") or "json",
        }
    )
    # Requests arrive with nginx's Host header: the listening address, by name or number.
    env.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
    # HTTPS at nginx: the servers believe its X-Forwarded-Proto, and only its.
    env["DJANGO_SECURE_PROXY_SSL_HEADER"] = "true"
    env["TRUSTED_PROXY_NETWORKS"] = f"{PROXY_ADDRESS}/32"
    # A request that reaches a server without nginx's header is redirected (probes exempt).
    env.setdefault("DJANGO_SECURE_SSL_REDIRECT", "true")
    env.setdefault("DJANGO_SECURE_COOKIES", "true")
    # HSTS binds the host name on every port (make run's plain http://localhost:8000 too):
    # five minutes here, not production's year.
    env.setdefault("DJANGO_SECURE_HSTS_SECONDS", "300")
    return env


def render_nginx_conf(
    port: int,
    web_ports: list[int],
    run_dir: Path,
    env: dict[str, str],
    *,
    http_port: int,
    tls: TlsFiles,
) -> Path:
    log_dir = run_dir / "log"
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    user_directive = ""
    if os.geteuid() == 0:
        # nginx's workers drop root; they must be able to write its temporary files.
        user_directive = "user nobody nogroup;"
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            shutil.chown(run_dir / sub, "nobody", "nogroup")
    servers = "\n".join(
        f"        server 127.0.0.1:{p} max_fails=3 fail_timeout=10s;" for p in web_ports
    )
    text = string.Template(TEMPLATE.read_text()).safe_substitute(
        USER_DIRECTIVE=user_directive,
        RUN_DIR=str(run_dir),
        LOG_DIR=str(log_dir),
        PORT=str(port),
        HTTP_PORT=str(http_port),
        TLS_CERT_FILE=str(tls.cert),
        TLS_KEY_FILE=str(tls.key),
        PROXY_ADDRESS=PROXY_ADDRESS,
        UPSTREAM_SERVERS=servers,
        STATIC_ROOT=env["STATIC_ROOT"],
    )
    path = run_dir / "nginx.conf"
    path.write_text(text)
    return path


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    http_port = int(os.environ.get("HTTP_PORT", str(port + 1)))
    if http_port == port:
        raise SystemExit("!! HTTP_PORT must differ from PORT (HTTPS)")
    web_processes = int(os.environ.get("WEB_PROCESSES", "2"))
    if web_processes < 1:
        raise SystemExit("!! WEB_PROCESSES must be at least 1")
    var_dir = Path(os.environ.get("CLUSTER_VAR_DIR", str(ROOT / "var" / "cluster")))
    run_dir = var_dir / f"run-{port}"
    if not PYTHON.exists():
        raise SystemExit("!! no virtualenv at .venv: run 'make cluster' or 'make install'")

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    children: list[Child] = []
    status = 0
    try:
        if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
            run([str(ROOT / "scripts" / "ensure-services.sh")], dict(os.environ))
        nginx = ensure_nginx()
        tls = tls_files(var_dir)

        shutil.rmtree(run_dir, ignore_errors=True)
        (run_dir / "log").mkdir(parents=True)
        (run_dir / "prometheus").mkdir()
        env = cluster_environment(port, run_dir)
        database = urlsplit(env["DATABASE_URL"]).path.lstrip("/")
        log(f"database {database}, keys {env['CACHE_KEY_PREFIX']}")
        if env["DATABASE_URL"].startswith("mysql"):
            create_database(env["DATABASE_URL"])
        manage = [str(PYTHON), "manage.py"]
        # One-off commands write no metrics worth keeping: keep them out of the shared dir.
        setup_env = {k: v for k, v in env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        log("migrating the database")
        run([*manage, "migrate", "--noinput", "-v", "0"], setup_env)
        run([*manage, "ensure_superuser"], setup_env)
        run([*manage, "collectstatic", "--noinput", "-v", "0"], setup_env)

        web_ports = [free_port() for _ in range(web_processes)]
        for n, web_port in enumerate(web_ports, start=1):
            children.append(
                Child(
                    f"web{n}",
                    # The same launcher as make run and compose: uvicorn, or daphne with
                    # TRITON_SERVER=daphne.
                    [str(ROOT / "scripts" / "serve.sh"), "127.0.0.1", str(web_port)],
                    env,
                )
            )
        celery = str(VENV_BIN / "celery")
        level = env.get("CELERY_LOG_LEVEL", "INFO")
        if level.isdigit():  # Celery itself exports a numeric CELERY_LOG_LEVEL to children
            level = "INFO"
        children.append(
            Child(
                "worker",
                [
                    celery,
                    "-A",
                    "workers",
                    "worker",
                    "--loglevel",
                    level,
                    "--concurrency",
                    env.get("CELERY_CONCURRENCY", "2"),
                    "--hostname",
                    f"worker-{port}@%h",
                ],
                env,
            )
        )
        children.append(
            Child(
                "beat",
                [
                    celery,
                    "-A",
                    "workers",
                    "beat",
                    "--loglevel",
                    level,
                    "--schedule",
                    str(run_dir / "celerybeat-schedule"),
                    "--pidfile",
                    "",
                ],
                env,
            )
        )
        for child in children:
            log(f"starting {child.name}")
            child.start()
        for web_port in web_ports:
            wait_http(f"http://127.0.0.1:{web_port}/health", 60, children)

        conf = render_nginx_conf(port, web_ports, run_dir, env, http_port=http_port, tls=tls)
        nginx_child = Child(
            "nginx",
            [nginx, "-e", "stderr", "-p", str(run_dir), "-c", str(conf), "-g", "daemon off;"],
            env,
        )
        children.append(nginx_child)
        access_log = run_dir / "log" / "nginx-access.log"
        log(
            f"starting nginx on 127.0.0.1:{port} (HTTPS) and 127.0.0.1:{http_port} (redirects)"
            f" (access log {access_log})"
        )
        nginx_child.start()
        # A readiness probe of our own loopback listener: any TLS answer means nginx is up (a
        # certificate given in TLS_CERT_FILE may name another host than 127.0.0.1).
        probe = ssl.create_default_context()
        probe.check_hostname = False
        probe.verify_mode = ssl.CERT_NONE
        wait_http(f"https://127.0.0.1:{port}/nginx-health", 20, children, probe)
        url = f"https://127.0.0.1:{port}"
        upstreams = ", ".join(f"127.0.0.1:{p}" for p in web_ports)
        log(
            f"Triton cluster is up: {url}  (web processes {upstreams};"
            f" websocket wss://127.0.0.1:{port}/ws/v1/; http://127.0.0.1:{http_port} redirects)"
        )
        if tls.generated:
            log(f"the certificate is self-signed: trust {tls.cert} (curl --cacert {tls.cert})")
        log("press Ctrl-C to stop")

        while True:
            for child in children:
                code = child.exited()
                if code is not None:
                    warn(f"{child.name} exited with status {code}: stopping the cluster")
                    raise Stop(1)
            time.sleep(0.5)
    except Stop as stop:
        status = stop.status
    except subprocess.CalledProcessError as error:
        warn(f"{' '.join(map(str, error.cmd))} failed with status {error.returncode}")
        status = 1
    finally:
        # No second Ctrl-C may interrupt the clean-up half-way.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if children:
            log("stopping")
        # nginx first (no new requests), then the servers, then the jobs.
        for child in reversed(children):
            child.terminate()
        deadline = time.monotonic() + STOP_GRACE
        for child in reversed(children):
            child.wait_or_kill(deadline)
    return status


if __name__ == "__main__":
    sys.exit(main())
