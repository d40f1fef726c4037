#!/usr/bin/env bash
# The public API (proto/hpsched/v1) stays compatible with the last release: `buf breaking` (npm @bufbuild/buf, FILE
# rules) against hpsched_v1_release.binpb, the image `buf build` made of proto/ at the release. First, the same check
# must fail on a copy of the protos with a field removed, so a pass means something.
# A new release: `cd proto && buf build -o ../tests/api/hpsched_v1_release.binpb`.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
buf="$root/tools/node_modules/.bin/buf"
image="$root/tests/api/hpsched_v1_release.binpb"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cp -r "$root/proto" "$tmp/broken"
# Drop the first numbered field of GetValuesRequest: a wire break buf must report.
/usr/bin/python3 - "$tmp/broken/hpsched/v1/scheduler_service.proto" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
start = text.index("message GetValuesRequest {")
field = re.compile(r"\n[ \t]+[\w.]+ \w+ = \d+;")
m = field.search(text, start)
open(path, "w").write(text[:m.start()] + text[m.end():])
PY
if (cd "$tmp/broken" && timeout 60 "$buf" breaking --against "$image" >"$tmp/broken.out" 2>&1); then
  echo "FAIL: buf breaking did not notice a removed field"; exit 1
fi
grep -q "GetValuesRequest" "$tmp/broken.out" || { echo "FAIL: unexpected buf output:"; cat "$tmp/broken.out"; exit 1; }

if ! (cd "$root/proto" && timeout 60 "$buf" breaking --against "$image"); then
  echo "FAIL: proto/ breaks the released API (above)"; exit 1
fi
echo "api_breaking: proto/ is compatible with the released image; a removed field is caught"
