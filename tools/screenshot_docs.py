"""Look at the built reference site in a real browser: headless Chromium
takes screenshots of its pages, and each is checked for being a rendered
page (not blank, not an error page).

    python tools/screenshot_docs.py SITE_DIR SHOT_DIR

Prints the screenshots' paths; exits non-zero if Chromium fails or a
shot looks empty.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zlib
from pathlib import Path

PAGES = ["rsyscall.html", "rsyscall/syscall_index.html", "rsyscall/sys/socket.html",
         "rsyscall/unistd.html", "rsyscall/thread.html"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("no Chromium (Debian: apt-get install chromium)")


def shoot(site: Path, shots: Path) -> list[Path]:
    shots.mkdir(parents=True, exist_ok=True)
    made = []
    for page in PAGES:
        target = shots / (page.replace("/", "_").removesuffix(".html") + ".png")
        subprocess.run(
            [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--window-size=1280,1400", f"--screenshot={target}", (site / page).as_uri()],
            check=True, capture_output=True, timeout=120,
        )
        check_not_blank(target)
        made.append(target)
    return made


def check_not_blank(png: Path) -> None:
    """A rendered page has many different rows of pixels; a blank one has
    a few (PNG filters each row, but identical rows filter alike)."""
    data = png.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit(f"{png}: not a PNG")
    chunks = []
    width = channels = 0
    offset = 8
    while offset < len(data):
        length = int.from_bytes(data[offset:offset + 4], "big")
        kind = data[offset + 4:offset + 8]
        body = data[offset + 8:offset + 8 + length]
        if kind == b"IHDR":
            width = int.from_bytes(body[0:4], "big")
            channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[body[9]] * body[8] // 8
        elif kind == b"IDAT":
            chunks.append(body)
        offset += 12 + length
    raw = zlib.decompress(b"".join(chunks))
    stride = 1 + width * channels
    rows = {raw[i:i + stride] for i in range(0, len(raw), stride)}
    if len(rows) < 50:
        raise SystemExit(f"{png}: the page looks blank ({len(rows)} different rows)")


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit("usage: python tools/screenshot_docs.py SITE_DIR SHOT_DIR")
    for shot in shoot(Path(sys.argv[1]), Path(sys.argv[2])):
        print(shot)


if __name__ == "__main__":
    main()
