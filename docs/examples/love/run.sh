#!/usr/bin/env bash
# The LÖVE example game under Xvfb through a server kill (run.py says what it checks).
set -euo pipefail
exec python3 "$(dirname "${BASH_SOURCE[0]}")/run.py" "$@"
