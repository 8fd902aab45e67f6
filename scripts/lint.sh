#!/usr/bin/env bash
# The fast gates, run before the long suites (tests/run-all.sh): formatting (rustfmt.toml),
# clippy with every warning an error, and shellcheck (.shellcheckrc) on every shell script
# in the repository. Exits non-zero on any finding. Tools come from scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "lint: cargo fmt --check" >&2
cargo fmt --all --check
echo "lint: cargo clippy --all-targets -- -D warnings" >&2
cargo clippy --locked --all-targets --quiet -- -D warnings
# Every tracked *.sh, and every other tracked file whose first line runs a shell.
mapfile -t scripts < <(
  git ls-files -z | while IFS= read -r -d '' f; do
    [[ -f $f ]] || continue
    if [[ $f == *.sh ]] || head -n1 "$f" | grep -qE '^#!.*\b(ba)?sh\b'; then printf '%s\n' "$f"; fi
  done
)
echo "lint: shellcheck ${#scripts[@]} scripts" >&2
shellcheck -x "${scripts[@]}"
echo "lint: ok" >&2
