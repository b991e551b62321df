#!/usr/bin/env bash
# report/weekly/week=D <- summary/daily/date=D .. D+6 : the week's reviews and mean rating per product.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ref="$1"
start="${ref#report/weekly/week=}"
days=()
missing=()
for i in 0 1 2 3 4 5 6; do
  day=$(date -u -d "$start + $i day" +%Y-%m-%d)
  daily="summary/daily/date=$day"
  days+=("$daily")
  [ -f "$(path_of "$daily")" ] || missing+=("$daily")
done
[ ${#missing[@]} -eq 0 ] || missing_deps "${missing[@]}"
tmp=$(mktemp)
for daily in "${days[@]}"; do cat "$(path_of "$daily")"; done |
  awk -F'\t' '{ n[$1] += $2; s[$1] += $2 * $3 } END { for (p in n) printf "%s\t%d\t%.2f\n", p, n[p], s[p] / n[p] }' | sort > "$tmp"
publish "$tmp" "$(path_of "$ref")"
echo "reported week of $start -> $ref"
