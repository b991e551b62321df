#!/usr/bin/env bash
# clean/reviews/date=D <- raw/reviews/date=D : drop empty and malformed lines, normalise ratings to 1..5.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
missing=()
for ref in "$@"; do
  raw="raw/reviews/${ref#clean/reviews/}"
  [ -f "$(path_of "$raw")" ] || missing+=("$raw")
done
[ ${#missing[@]} -eq 0 ] || missing_deps "${missing[@]}"
for ref in "$@"; do
  raw="raw/reviews/${ref#clean/reviews/}"
  tmp=$(mktemp)
  awk -F'\t' 'NF >= 3 && $2 ~ /^[0-9]+$/ { r = $2; if (r < 1) r = 1; if (r > 5) r = 5; print $1 "\t" r "\t" $3 }' "$(path_of "$raw")" > "$tmp"
  publish "$tmp" "$(path_of "$ref")"
  echo "cleaned $raw -> $ref ($(wc -l < "$(path_of "$ref")") reviews)"
done
