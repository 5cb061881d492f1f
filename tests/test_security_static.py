"""Static files ready for a CDN: collectstatic gives hashed names (a changed file gets a new
name), and whitenoise serves them compressed with a far-future, immutable Cache-Control."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from django.core.management import call_command
from django.templatetags.static import static
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
YEAR_AND_MORE = "max-age=315360000"


def _collect(tmp_path: Path, settings, css: str) -> str:
    source = tmp_path / "source"
    source.mkdir(exist_ok=True)
    (source / "triton-probe.css").write_text(css)
    settings.STATICFILES_DIRS = [str(source)]
    # Only this folder: compressing every app's files would make the test slow, not better.
    settings.STATICFILES_FINDERS = ["django.contrib.staticfiles.finders.FileSystemFinder"]
    settings.STATIC_ROOT = str(tmp_path / "collected")
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    settings.WHITENOISE_USE_FINDERS = False
    settings.MIDDLEWARE = [
        "django.middleware.security.SecurityMiddleware",
        "whitenoise.middleware.WhiteNoiseMiddleware",
        *[m for m in settings.MIDDLEWARE if not m.endswith("SecurityMiddleware")],
    ]
    call_command("collectstatic", "--noinput", verbosity=0)
    return static("triton-probe.css")


def test_hashed_files_are_served_compressed_and_cached_for_ever(tmp_path: Path, settings) -> None:
    url = _collect(tmp_path, settings, "body { color: #123456; }\n" * 200)
    assert url.startswith("/static/triton-probe.") and url.endswith(".css")
    assert url != "/static/triton-probe.css"

    for accepted in ("gzip", "gzip, deflate, br"):
        response = Client().get(url, headers={"Accept-Encoding": accepted})
        assert response.status_code == 200
        # brotli when the client takes it and the brotli module is installed (locust brings it
        # in), else gzip.
        expected = ("gzip", "br") if "br" in accepted else ("gzip",)
        assert response["Content-Encoding"] in expected
        assert YEAR_AND_MORE in response["Cache-Control"]
        assert "immutable" in response["Cache-Control"]
        assert "Accept-Encoding" in response["Vary"]
        assert response["X-Content-Type-Options"] == "nosniff"

    identity = Client().get(url, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in identity
    assert b"".join(identity.streaming_content).startswith(b"body { color: #123456; }")

    # The unhashed name stays reachable but is cached briefly: it changes in place.
    plain = Client().get("/static/triton-probe.css")
    assert plain.status_code == 200
    assert YEAR_AND_MORE not in plain["Cache-Control"]


def test_a_changed_file_gets_a_new_name_and_the_old_one_stays(tmp_path: Path, settings) -> None:
    first = _collect(tmp_path, settings, "body { color: red; }\n")
    second = _collect(tmp_path, settings, "body { color: blue; }\n")
    assert first != second
    client = Client()
    assert b"blue" in b"".join(client.get(second).streaming_content)
    # Pages still cached somewhere name the old file: it must keep working.
    assert b"red" in b"".join(client.get(first).streaming_content)


def test_static_url_may_name_a_cdn_origin() -> None:
    program = (
        "import django; django.setup(); from django.templatetags.static import static; "
        "print(static('admin/css/base.css'))"
    )
    result = subprocess.run(
        [str(PYTHON), "-c", program],
        cwd=ROOT,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DJANGO_SETTINGS_MODULE": "backend.settings",
            "DJANGO_SECRET_KEY": "test-only-static-secret-key",
            "STATIC_URL": "https://cdn.example.test/static/",
            "STATIC_MANIFEST": "false",
            "TRITON_VAR_DIR": "/tmp/triton-tests/static-cdn",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "https://cdn.example.test/static/admin/css/base.css"
