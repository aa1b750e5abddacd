#!/usr/bin/env bash
# scripts/layers.sh - check that the files of src/ only call down.
#
#   bash scripts/layers.sh [BUILD_DIR]     (default build/plain)
#
# Reads the built static library (BUILD_DIR/librustyray.a) with nm: every
# global symbol a member defines (ray_*, ray__*, functions and data alike)
# names the file it belongs to; every symbol a member leaves undefined that
# another member defines is a call (or a data reference) from one file to
# another. Each such edge must be listed in scripts/layers.txt, which is
# written bottom layer first so a reader sees the layers. Fails, naming the
# edge and the symbols behind it, when:
#   - a file calls another that the list does not allow;
#   - the list itself has a cycle among its edges not marked "# cycle:"
#     (a cycle must be a known, explained exception, never an accident).
# An allowed edge that no longer occurs is reported as a note (delete the
# line), not a failure. Also fails when a ray__ symbol's prefix is not one
# that scripts/names.txt gives the file defining it (names map to files),
# and when a file exports a ray__ name that no other file (nor a test) uses.
set -euo pipefail

cd "$(dirname "$0")/.."
build=${1:-build/plain}
lib=$build/librustyray.a
list=scripts/layers.txt

if [ ! -f "$lib" ]; then
  echo "layers: $lib not found: build first (cmake --build $build)" >&2
  exit 2
fi

# "from to symbol" for every reference between two different members.
# nm -P -A prints "lib[member.c.o]: name type ...".
edges=$(nm -A -P -g "$lib" | awk '
  {
    m = $1; sub(/^.*\[/, "", m); sub(/\.o\]:$/, "", m)
    if ($3 == "U" || $3 == "w" || $3 == "v") { nuse++; ufile[nuse] = m; usym[nuse] = $2 }
    else def[$2] = m
  }
  END {
    for (i = 1; i <= nuse; i++) {
      d = def[usym[i]]
      if (d != "" && d != ufile[i]) print ufile[i], d, usym[i]
    }
  }' | sort -u)

# The allowed edges: "from -> to", comments after '#'. Marked cycle edges
# are kept apart for the acyclicity check.
allowed=$(sed -e 's/#.*//' "$list" | awk 'NF == 3 && $2 == "->" { print $1, $3 }' | sort -u)
acyclic=$(grep -v '# *cycle:' "$list" | sed -e 's/#.*//' |
  awk 'NF == 3 && $2 == "->" { print $1, $3 }')
bad_lines=$(sed -e 's/#.*//' "$list" | awk 'NF > 0 && !(NF == 3 && $2 == "->")')
if [ -n "$bad_lines" ]; then
  echo "layers: $list: lines that are not \"from.c -> to.c\":" >&2
  echo "$bad_lines" >&2
  exit 1
fi

status=0
actual=$(echo "$edges" | awk 'NF { print $1, $2 }' | sort -u)
unexpected=$(comm -23 <(echo "$actual") <(echo "$allowed"))
if [ -n "$unexpected" ]; then
  status=1
  while read -r from to; do
    syms=$(echo "$edges" | awk -v f="$from" -v t="$to" '$1 == f && $2 == t { printf " %s", $3 }')
    echo "layers: unexpected call src/$from -> src/$to (uses:$syms)" >&2
  done <<<"$unexpected"
  echo "layers: these edges are not in $list. Call through a lower layer (or move the" >&2
  echo "        code down); only if the layering itself changed, add the edge there." >&2
fi

# tsort reports a loop on stderr and exits non-zero.
if ! loop=$(echo "$acyclic" | tsort 2>&1 >/dev/null); then
  status=1
  echo "layers: $list has a cycle among edges not marked '# cycle:':" >&2
  while read -r line; do echo "  $line"; done <<<"$loop" >&2
fi

# Names: every ray__ symbol a member defines starts with one of the prefixes
# scripts/names.txt gives that file (ray__<prefix>_... or ray__<prefix>).
names=scripts/names.txt
misnamed=$(nm -A -P -g --defined-only "$lib" | awk -v list="$names" '
  BEGIN {
    while ((getline line < list) > 0) {
      sub(/#.*/, "", line)
      n = split(line, w, /[ \t:]+/)
      if (n < 2 || w[1] == "") continue
      for (i = 2; i <= n; i++) if (w[i] != "") ok[w[1], w[i]] = 1
      known[w[1]] = 1
    }
  }
  $2 ~ /^ray__/ {
    m = $1; sub(/^.*\[/, "", m); sub(/\.o\]:$/, "", m)
    s = $2; sub(/^ray__/, "", s)
    good = 0
    if (!(m in known)) { print m, $2, "(file not in the list)"; next }
    for (k in ok) {
      split(k, kp, SUBSEP)
      if (kp[1] != m) continue
      p = kp[2]
      if (s == p || substr(s, 1, length(p) + 1) == p "_") { good = 1; break }
    }
    if (!good) print m, $2
  }')
if [ -n "$misnamed" ]; then
  status=1
  echo "layers: names that do not say their file ($names):" >&2
  while read -r line; do echo "  src/$line" >&2; done <<<"$misnamed"
fi

# File-local means static: a ray__ global that no other file of the library
# uses must be an interface of the tests (used under tests/ or bench/).
unused=$(nm -A -P -g "$lib" | awk '
  { m = $1; sub(/^.*\[/, "", m); sub(/\.o\]:$/, "", m)
    if ($3 == "U") used[$2] = 1; else if ($2 ~ /^ray__/) def[$2] = m }
  END { for (s in def) if (!(s in used)) print def[s], s }' | sort)
while read -r file sym; do
  [ -z "$sym" ] && continue
  if ! grep -rqw "$sym" tests bench; then
    status=1
    echo "layers: src/$file defines $sym, which no other file uses: make it static" >&2
  fi
done <<<"$unused"

stale=$(comm -13 <(echo "$actual") <(echo "$allowed"))
if [ -n "$stale" ]; then
  echo "$stale" | while read -r from to; do
    echo "layers: note: $from -> $to is allowed but not called: delete its line from $list"
  done
fi

if [ "$status" -eq 0 ]; then
  echo "layers: $(echo "$actual" | grep -c .) calls between $(nm -A -P -g "$lib" |
    awk '{ m = $1; sub(/^.*\[/, "", m); print m }' | sort -u | wc -l) files, all allowed by $list; every name as $names gives"
fi
exit "$status"
