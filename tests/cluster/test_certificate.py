"""make cluster's certificate (scripts/cluster.py): generated once for localhost and 127.0.0.1,
reused while valid, replaced when close to expiry; a given pair is used as it is."""

from __future__ import annotations

import importlib.util
import ipaddress
import ssl
import sys
from pathlib import Path
from types import ModuleType

import pytest
from cryptography import x509

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cluster_script", ROOT / "scripts" / "cluster.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.fixture(autouse=True)
def no_given_certificate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TLS_CERT_FILE", raising=False)
    monkeypatch.delenv("TLS_KEY_FILE", raising=False)


def test_generated_once_then_reused(cluster: ModuleType, tmp_path: Path) -> None:
    first = cluster.tls_files(tmp_path)
    assert first.generated and first.cert == tmp_path / "tls" / "cert.pem"
    assert first.key.stat().st_mode & 0o777 == 0o600
    cert = x509.load_pem_x509_certificate(first.cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    # A client can use it as its trust anchor (load_verify_locations parses it as a CA file).
    ssl.create_default_context(cafile=first.cert)

    pem = first.cert.read_bytes()
    again = cluster.tls_files(tmp_path)
    assert again == first and first.cert.read_bytes() == pem, "a valid certificate is kept"


def test_replaced_when_close_to_expiry_or_broken(
    cluster: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = cluster.TlsFiles(tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem", True)
    monkeypatch.setattr(cluster, "CERTIFICATE_DAYS", 10)  # less than RENEW_BEFORE left
    cluster.generate_certificate(files.cert, files.key)
    monkeypatch.undo()
    old = files.cert.read_bytes()
    assert not cluster.certificate_fits(files.cert, files.key)
    cluster.tls_files(tmp_path)
    assert files.cert.read_bytes() != old
    assert cluster.certificate_fits(files.cert, files.key)

    files.key.write_text("not a key")
    cluster.tls_files(tmp_path)
    assert cluster.certificate_fits(files.cert, files.key)


def test_a_given_pair_is_used_as_it_is(
    cluster: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = tmp_path / "own" / "fullchain.pem", tmp_path / "own" / "privkey.pem"
    cluster.generate_certificate(cert, key)
    monkeypatch.setenv("TLS_CERT_FILE", str(cert))
    with pytest.raises(SystemExit, match="both TLS_CERT_FILE and TLS_KEY_FILE"):
        cluster.tls_files(tmp_path / "var")
    monkeypatch.setenv("TLS_KEY_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(SystemExit, match="does not exist"):
        cluster.tls_files(tmp_path / "var")
    monkeypatch.setenv("TLS_KEY_FILE", str(key))
    given = cluster.tls_files(tmp_path / "var")
    assert (given.cert, given.key, given.generated) == (cert, key, False)
    assert not (tmp_path / "var" / "tls").exists(), "nothing is generated beside a given pair"
