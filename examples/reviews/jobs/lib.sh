# Shared by the example jobs. Partitions live as files under $DATABUILD_DATA_DIR (default ./data).
DATA_DIR="${DATABUILD_DATA_DIR:-$(pwd)/data}"
path_of() { printf '%s/%s.tsv' "$DATA_DIR" "$1"; }
# Report the missing inputs the DataBuild way and stop: the service turns them into upstream wants.
missing_deps() {
  local json="" sep=""
  for ref in "$@"; do json="$json$sep\"$ref\""; sep=","; done
  echo "__DATABUILD_ERROR__::{\"missing_deps\":[$json]}"
  exit 3
}
# Write atomically: a crash never leaves half a partition behind.
publish() { mkdir -p "$(dirname "$2")"; mv "$1" "$2"; }
