#!/usr/bin/env bash
# Regenerate the locks from pyproject.toml (needs the package index): runtime.lock for `make serve`,
# dev.lock for `make test`. torch stays pinned to the CPU build that `make` installs first. The first line
# of each lock records a hash of pyproject.toml's dependency lists; tests/test_lock.py checks it is current.
set -euo pipefail
cd "$(dirname "$0")/.."
COMPILER=${LOCK_COMPILER:-pip-compile}
deps_hash=$(python3 -c 'import hashlib, json, tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; print(hashlib.sha256(json.dumps([p["dependencies"], p["optional-dependencies"]], sort_keys=True).encode()).hexdigest())')
for lock in runtime dev; do
  extra=(); [ "$lock" = dev ] && extra=(--extra dev)
  "$COMPILER" -q --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links \
    -c requirements/torch.txt "${extra[@]}" -o "requirements/$lock.lock" pyproject.toml
  { echo "# pyproject-dependencies-sha256: $deps_hash"; cat "requirements/$lock.lock"; } > "requirements/$lock.lock.tmp"
  mv "requirements/$lock.lock.tmp" "requirements/$lock.lock"
done
