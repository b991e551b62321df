#!/usr/bin/env bash
# raw/reviews/date=D : a day of product reviews "fetched" from the review service. Here they are
# synthesised deterministically from the date, so the example needs no network and reruns are identical.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
for ref in "$@"; do
  day="${ref#raw/reviews/date=}"
  seed=$(printf '%s' "$day" | tr -d '-')
  tmp=$(mktemp)
  awk -v seed="$seed" 'BEGIN {
    srand(seed); split("kettle toaster blender grinder scale", products, " ")
    split("great|fine|broke after a week|love it|too loud|", words, "|")
    for (i = 0; i < 40; i++) {
      p = products[int(rand() * 5) + 1]; r = int(rand() * 6)   # 0 is malformed: cleaned away downstream
      printf "%s\t%d\t%s\n", p, r, words[int(rand() * 6) + 1]
    }
  }' > "$tmp"
  publish "$tmp" "$(path_of "$ref")"
  echo "ingested $ref ($(wc -l < "$(path_of "$ref")") reviews)"
done
