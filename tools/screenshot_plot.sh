#!/usr/bin/env bash
# Renders an SVG made by `hpsched plot --svg` in headless Chromium and saves a PNG, to look at what
# the plot really looks like in a browser. Not part of `make test`.
#
#   tools/screenshot_plot.sh PLOT.svg OUT.png [WIDTH,HEIGHT]
#
# The window size defaults to the SVG's width and height attributes (900,560 if it has none).
# Installs Debian's chromium with apt-get when it is missing (needs root).
# Example:
#   build/client/hpsched plot --local --steps 0:100 --base 0.1,0.01 --svg /tmp/seq.svg \
#     --schedule '{"sequential":{"schedules":[{"linear":{"start_factor":0.1,"total_iters":5}},
#                  {"cosine_annealing":{"t_max":95}}],"milestones":[5]}}'
#   tools/screenshot_plot.sh /tmp/seq.svg /tmp/seq.png
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
  echo "usage: $0 PLOT.svg OUT.png [WIDTH,HEIGHT]" >&2
  exit 2
fi
svg=$1
out=$2
if [[ ! -s $svg ]]; then
  echo "$0: $svg: no such file or empty" >&2
  exit 2
fi
svg=$(cd "$(dirname "$svg")" && pwd)/$(basename "$svg")
case $out in
  /*) ;;
  *) out=$PWD/$out ;;
esac

size=${3:-}
if [[ -z $size ]]; then
  # The root element's width="..." height="..." (hpsched writes whole pixels).
  root=$(grep -m1 -o '<svg [^>]*>' "$svg" || true)
  w=$(sed -n 's/.* width="\([0-9]*\)".*/\1/p' <<<"$root")
  h=$(sed -n 's/.* height="\([0-9]*\)".*/\1/p' <<<"$root")
  size="${w:-900},${h:-560}"
fi

chromium=$(command -v chromium || command -v chromium-browser || true)
if [[ -z $chromium ]]; then
  echo "$0: installing chromium (apt-get install -y chromium)" >&2
  apt-get install -y chromium >/dev/null
  chromium=$(command -v chromium)
fi

profile=$(mktemp -d "${TMPDIR:-/tmp}/hpsched-chromium.XXXXXX")
trap 'rm -rf "$profile"' EXIT
rm -f "$out"
# Chromium logs harmless D-Bus and GPU complaints on stderr; keep them out of the way unless it fails.
if ! timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --hide-scrollbars --user-data-dir="$profile" --screenshot="$out" --window-size="$size" \
  "file://$svg" >"$profile/chromium.log" 2>&1 || [[ ! -s $out ]]; then
  cat "$profile/chromium.log" >&2
  echo "$0: chromium made no screenshot" >&2
  exit 1
fi
echo "$out ($size)"
