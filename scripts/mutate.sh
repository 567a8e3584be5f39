#!/usr/bin/env bash
# Curated mutation testing: proves that each check the README's threat model
# relies on is guarded by a test that fails without it.
#
# Each mutation in scripts/mutations.sh is one minimal source change that
# disables one check. They are applied one at a time to a scratch copy of the
# tree (build-mutate/src, never the checkout), rebuilt incrementally (only the
# targets the mutation's tests need), and the tests the mutation names are run.
# A mutation is KILLED when at least one of them fails, SURVIVED when all pass.
# It is STALE when its text no longer occurs exactly once in its file, and
# BROKEN when the mutant does not compile: both mean the list has rotted as the
# code moved, and fail the run like a survivor.
#
# Also checked: every mutation id is named in the README's threat model, and
# every guarantee of the threat model names at least one mutation.
#
# Usage: scripts/mutate.sh [--list] [ID ...]
#   --list   print the mutations and exit
#   ID ...   run only these mutations (default: all)
# Environment: QV_MUTATE_DIR (scratch folder, default build-mutate),
#              QV_MUTATE_JOBS (parallel build and test jobs, default nproc).
# Exit status: 0 when every mutation ran is KILLED, 1 otherwise.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
work=${QV_MUTATE_DIR:-$root/build-mutate}
jobs=${QV_MUTATE_JOBS:-$(nproc)}

ids=() guarantees=() files=() froms=() tos=() targets=() tests=()
exclude='^$'  # mutations.sh may name tests never worth their time here
# mutation ID GUARANTEE FILE FROM TO TARGETS TESTS
#   FROM must occur exactly once in FILE; TARGETS are the build targets the
#   tests need; TESTS is a ctest regular expression over test names.
mutation() {
  [ $# -eq 7 ] || { echo "mutate: mutation '$1' needs 7 fields, has $#" >&2; exit 2; }
  ids+=("$1") guarantees+=("$2") files+=("$3") froms+=("$4") tos+=("$5")
  targets+=("$6") tests+=("$7")
}
# shellcheck source=mutations.sh
source "$root/scripts/mutations.sh"

if [ "${1:-}" = "--list" ]; then
  for i in "${!ids[@]}"; do
    printf '%-28s %-18s %s\n' "${ids[$i]}" "${guarantees[$i]}" "${files[$i]}"
  done
  exit 0
fi

selected=()
if [ $# -eq 0 ]; then
  selected=("${!ids[@]}")
else
  for want in "$@"; do
    found=
    for i in "${!ids[@]}"; do [ "${ids[$i]}" = "$want" ] && found=$i; done
    [ -n "$found" ] || { echo "mutate: no mutation '$want' (see --list)" >&2; exit 2; }
    selected+=("$found")
  done
fi

failures=0

# The README's threat model and the list must name each other.
threat=$(sed -n '/^## Threat model/,/^## /p' README.md)
declare -A seen_id=()
for i in "${!ids[@]}"; do
  id=${ids[$i]}
  if [ -n "${seen_id[$id]:-}" ]; then
    echo "mutate: mutation id '$id' is used twice" >&2
    failures=$((failures + 1))
  fi
  seen_id[$id]=1
  if ! grep -qF "\`$id\`" <<<"$threat"; then
    echo "mutate: mutation '$id' is not named in the README's threat model" >&2
    failures=$((failures + 1))
  fi
done
while IFS= read -r bullet; do
  if ! grep -qE 'Mutations: (`|none)' <<<"$bullet"; then
    echo "mutate: threat model guarantee without a mutation: ${bullet:0:70}" >&2
    failures=$((failures + 1))
  fi
done < <(awk '/^- \*\*/{if (b) print b; b=$0; next} /^  /{if (b) b=b" "$0; next} {if (b) print b; b=""} END{if (b) print b}' <<<"$threat")
for named in $(grep -o 'Mutations: [^.]*' <<<"$threat" | grep -o '`[a-z0-9-]*`' | tr -d '`'); do
  if [ -z "${seen_id[$named]:-}" ]; then
    echo "mutate: the README names mutation '$named', which scripts/mutations.sh lacks" >&2
    failures=$((failures + 1))
  fi
done

# The scratch copy: the tracked files as they are in the checkout, built in
# its own build folder (the shared vectors are the checkout's). On a second
# run only files whose content differs are copied, with a fresh mtime, so the
# build is incremental and never mistakes an older file for a built one.
mkdir -p "$work/src" "$work/incoming"
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$work/incoming"
(cd "$work/incoming" && find . -type f -print0) | while IFS= read -r -d '' f; do
  if ! cmp -s "$work/incoming/$f" "$work/src/$f"; then
    mkdir -p "$(dirname "$work/src/$f")"
    cp "$work/incoming/$f" "$work/src/$f"
  fi
done
rm -rf "$work/incoming"
generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
cmake -S "$work/src" -B "$work/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DQV_TESTS=ON -DQV_WERROR=OFF -DQV_SHARED_VECTORS_DIR="$root/../shared/vectors" >/dev/null
all_targets=$(printf '%s\n' "${targets[@]}" | tr ' ' '\n' | sort -u | tr '\n' ' ')
echo "== mutate: building the scratch copy ($all_targets)"
# shellcheck disable=SC2086
cmake --build "$work/build" --parallel "$jobs" --target $all_targets >"$work/build.log" 2>&1 ||
  { tail -30 "$work/build.log"; echo "mutate: the unmutated tree does not build" >&2; exit 1; }

restore() {
  # A fresh mtime, so the next build recompiles the file from its original text.
  if [ -n "${current:-}" ]; then
    cp "$root/$current" "$work/src/$current"
    touch "$work/src/$current"
    current=
  fi
}
trap restore EXIT

rows=()
start_all=$(date +%s)
for i in "${selected[@]}"; do
  id=${ids[$i]} file=${files[$i]} from=${froms[$i]} to=${tos[$i]}
  t0=$(date +%s)
  text=$(cat "$work/src/$file"; printf x)
  text=${text%x}
  without=${text//"$from"/}
  count=$(( (${#text} - ${#without}) / ${#from} ))
  if [ "$count" -ne 1 ]; then
    result=STALE detail="the text occurs $count times in $file"
  else
    current=$file
    printf '%s' "${text/"$from"/"$to"}" >"$work/src/$file"
    # shellcheck disable=SC2086
    if ! cmake --build "$work/build" --parallel "$jobs" --target ${targets[$i]} \
      >"$work/$id.build.log" 2>&1; then
      result=BROKEN detail="does not compile: $work/$id.build.log"
    else
      log="$work/$id.test.log"
      set +e
      (cd "$work/build" && ctest --no-tests=error -j "$jobs" --timeout 180 \
        -R "${tests[$i]}" -E "$exclude" >"$log" 2>&1)
      rc=$?
      set -e
      # ctest's closing list: "NN - NAME [# GetParam() = ...] (Failed)".
      failed=$(sed -n '/The following tests FAILED:/,$p' "$log" |
        grep -oE '^[[:space:]]*[0-9]+ - [^ ]+' | sed -E 's/^[[:space:]]*[0-9]+ - //' |
        sort -u | head -3 | paste -sd, - || true)
      ran=$(grep -oE 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | grep -oE '[0-9]+$' || true)
      if grep -q 'No tests were found' "$log"; then
        result=STALE detail="no test matches ${tests[$i]}"
      elif [ "$rc" -ne 0 ] && [ -n "$failed" ]; then
        result=KILLED detail="$failed (of ${ran:-?})"
      elif [ "$rc" -ne 0 ]; then
        result=BROKEN detail="ctest failed without naming a test: $log"
      else
        result=SURVIVED detail="${ran:-?} tests passed"
      fi
    fi
    restore
  fi
  [ "$result" = KILLED ] || failures=$((failures + 1))
  row=$(printf '%-28s %-16s %-8s %4ss  %s' "$id" "${guarantees[$i]}" "$result" \
    "$(($(date +%s) - t0))" "$detail")
  echo "$row"
  rows+=("$row")
done

echo
echo "== mutate: ${#selected[@]} mutations in $(($(date +%s) - start_all)) s"
printf '%-28s %-16s %-8s %5s  %s\n' MUTATION GUARANTEE RESULT TIME "TESTS THAT FAILED"
printf '%s\n' "${rows[@]}"
killed=$(printf '%s\n' "${rows[@]}" | grep -c ' KILLED ' || true)
echo "== mutate: $killed of ${#selected[@]} killed; $failures problem(s)"
[ "$failures" -eq 0 ]
