#!/usr/bin/env bash
# The preflight gate of the playbook: a thin wrapper around `autopack gate`.
#   scripts/preflight_gate.sh [--profile normal|strict] [--repo DIR] [--json]
# Exit 0 when the profile goes green within its attempts, 1 when it never does, 2 on bad
# configuration.
set -euo pipefail
exec "${AUTOPACK:-autopack}" gate "$@"
