#!/usr/bin/env bash
# Makes sure the invoice renderer's tools are installed: wkhtmltopdf (HTML -> PDF, driven by
# pdfkit) and poppler-utils (pdftotext, which the tests use to read PDFs back).
# Installs the Debian packages when missing (needs root, as on CI). Idempotent.
set -euo pipefail

missing=()
command -v wkhtmltopdf >/dev/null 2>&1 || missing+=(wkhtmltopdf)
command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "!! missing packages (${missing[*]}) and not root: install them and retry" >&2
  exit 1
fi
echo ">> apt-get install ${missing[*]}"
DEBIAN_FRONTEND=noninteractive apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
