#!/usr/bin/env bash
# System packages the end-to-end tests use: Debian's Chromium (headless browser tests), PostgreSQL (the study's
# storage tests), nginx (two app processes behind it) and ExifTool (reads the provenance labels back: a reader that is not the writer). Needs root
# (apt-get). Without them those tests skip locally; under CI=true they fail.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -x /usr/lib/postgresql/*/bin/postgres ] 2>/dev/null || missing+=(postgresql)
command -v exiftool >/dev/null 2>&1 || missing+=(libimage-exiftool-perl)
[ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
