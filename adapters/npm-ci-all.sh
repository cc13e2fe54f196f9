#!/usr/bin/env bash
# `npm ci` in every Node adapter folder: adapters/node and each npm library under
# adapters/thirdparty/ (each folder has its own package.json and package-lock.json).
set -euo pipefail
cd "$(dirname "$0")"
for lock in node/package-lock.json thirdparty/*/package-lock.json; do
    npm ci --prefix "$(dirname "$lock")" --no-audit --no-fund
done
