#!/usr/bin/env bash
# The deterministic fault simulator (tests/sim): SEEDS seeds from FROM
# (default 10,000 from 0), or SEED=S alone, replayed with the shrunk
# scenario of its violation. Ends with the line `N seeds, V violations`.
# PROFILE=release for long runs (make soak).
set -euo pipefail
source "$(dirname "$0")/env.sh"
flags=(-q --test sim)
[ "${PROFILE:-}" = release ] && flags+=(--release)
SIM_SEEDS=${SEEDS:-10000} SIM_FROM=${FROM:-0} SIM_SEED=${SEED:-} cargo test "${flags[@]}"
