#!/usr/bin/env bash
# scripts/format.sh - every C source and header (and the benchmark's C++) in
# .clang-format's style (clang-format 14, Debian's `clang-format`): tracked files
# and new ones not yet added (a new file is checked before its first commit).
#
#   bash scripts/format.sh           reformat in place
#   bash scripts/format.sh --check   change nothing; fail naming each file
#                                    that is not formatted (the test command)
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.c' '*.h' '*.cpp')
if [ "${1:-}" = "--check" ]; then
  bad=()
  for f in "${files[@]}"; do
    clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
  done
  if [ ${#bad[@]} -gt 0 ]; then
    echo "format: not in .clang-format's style (run bash scripts/format.sh):" >&2
    printf '  %s\n' "${bad[@]}" >&2
    exit 1
  fi
  echo "format: ${#files[@]} files in .clang-format's style"
else
  clang-format -i "${files[@]}"
fi
