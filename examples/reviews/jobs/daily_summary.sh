#!/usr/bin/env bash
# summary/daily/date=D <- clean/reviews/date=D : review count and mean rating per product.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ref="$1"
clean="clean/reviews/${ref#summary/daily/}"
[ -f "$(path_of "$clean")" ] || missing_deps "$clean"
tmp=$(mktemp)
awk -F'\t' '{ n[$1]++; s[$1] += $2 } END { for (p in n) printf "%s\t%d\t%.2f\n", p, n[p], s[p] / n[p] }' "$(path_of "$clean")" | sort > "$tmp"
publish "$tmp" "$(path_of "$ref")"
echo "summarised $clean -> $ref"
