#!/usr/bin/env bash
# Formats the Swift sources with the toolchain's swift-format and the repository's .swift-format
# (4-space indents, lines of at most 130 characters):
#   Tools/format.sh           rewrite the files in place
#   Tools/format.sh --check   change nothing; fail (exit 1) naming each file that is not formatted
#                             or has a line over the limit (Tools/test.sh runs this)
# swift-format breaks code but not string literals or comments: split a long message with `+`.
set -euo pipefail
cd "$(dirname "$0")/.."
paths=(Sources Tests Tools/fuzz)
limit=$(sed -n 's/.*"lineLength": *\([0-9]*\).*/\1/p' .swift-format)
if ! swift format --version >/dev/null 2>&1; then
    echo "format: this toolchain has no swift-format (Swift 6 ships it as \`swift format\`)" >&2
    exit 2
fi
if [ "${1:-}" != "--check" ]; then
    exec swift format format -i -r --configuration .swift-format "${paths[@]}"
fi
status=0
while IFS= read -r -d '' file; do
    if ! swift format format --configuration .swift-format "$file" | cmp -s - "$file"; then
        echo "format: $file is not formatted (run Tools/format.sh)" >&2
        status=1
    fi
    if awk -v n="$limit" 'length($0) > n { found = 1 } END { exit !found }' "$file"; then
        echo "format: $file has lines over $limit characters" >&2
        status=1
    fi
done < <(find "${paths[@]}" -name '*.swift' -print0)
exit $status
