#!/usr/bin/env python3
"""Checks of the dashboard's files (server/web/), no browser needed:

- the vendored uPlot (server/web/vendor/uplot/) is byte for byte the npm package's dist files and LICENSE, at the
  version tools/package.json pins (tools/node_modules from `npm install --prefix tools`; skipped, exit 77, without it);
- every script and stylesheet index.html loads is a file under server/web/, and no page loads anything from another
  host (the dashboard must work with no internet);
- server/web/examples.js is what tests/web/gen_examples.py makes of the golden cases.
Usage: assets_test.py   (from anywhere; paths are relative to the repo)
"""
import json
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
WEB = ROOT / "server/web"
VENDOR = WEB / "vendor/uplot"
FILES = {"uPlot.iife.min.js": "dist/uPlot.iife.min.js", "uPlot.min.css": "dist/uPlot.min.css", "LICENSE": "LICENSE"}


def main() -> int:
    failures = []
    pinned = json.loads((ROOT / "tools/package.json").read_text())["devDependencies"]["uplot"]
    if (VENDOR / "VERSION").read_text().strip() != pinned:
        failures.append(f"vendor/uplot/VERSION is {(VENDOR / 'VERSION').read_text().strip()}, package.json pins {pinned}")
    lock = json.loads((ROOT / "tools/package-lock.json").read_text())
    if lock["packages"].get("node_modules/uplot", {}).get("version") != pinned:
        failures.append(f"package-lock.json does not lock uplot {pinned}")
    if f"(v{pinned})" not in (VENDOR / "uPlot.iife.min.js").read_text()[:200]:
        failures.append(f"vendor/uplot/uPlot.iife.min.js does not say it is v{pinned}")

    for page in WEB.rglob("*"):
        if page.suffix in (".html", ".js", ".css") and "vendor" not in page.parts:
            for m in re.finditer(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", page.read_text()):
                failures.append(f"{page.relative_to(ROOT)} loads from another host: {m.group(0)}")
    index = (WEB / "index.html").read_text()
    for ref in re.findall(r"""(?:src|href)="(/[^"]*)\"""", index):
        if not (WEB / ref.lstrip("/")).is_file():
            failures.append(f"index.html loads {ref}, which is not a file under server/web/")

    gen = subprocess.run([sys.executable, str(ROOT / "tests/web/gen_examples.py"), "--check"], capture_output=True,
                         text=True)
    if gen.returncode != 0:
        failures.append(gen.stderr.strip() or "examples.js is stale")

    package = ROOT / "tools/node_modules/uplot"
    skipped = not (package / "package.json").is_file()
    if not skipped:
        installed = json.loads((package / "package.json").read_text())["version"]
        if installed != pinned:
            failures.append(f"tools/node_modules has uplot {installed}, package.json pins {pinned}: npm install --prefix tools")
        for vendored, original in FILES.items():
            if (VENDOR / vendored).read_bytes() != (package / original).read_bytes():
                failures.append(f"server/web/vendor/uplot/{vendored} differs from the npm package's {original}")

    for f in failures:
        print("FAIL:", f)
    if failures:
        return 1
    if skipped:
        print("SKIP: tools/node_modules/uplot is not installed (npm install --prefix tools); the other checks passed")
        return 77
    print(f"ok: vendored uPlot {pinned} equals the npm package; index.html loads only local files; examples current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
