"""The reference site: it builds (.ci/docs), has a page per header module
and a syscall index of the whole x86_64 table, links man pages to the
right section, and renders in a real browser (headless Chromium)."""

from __future__ import annotations

import html
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from rsyscall.near.sysnum import SYS

ROOT = Path(__file__).resolve().parent.parent
HEADER_MODULES = [
    "unistd", "fcntl", "sched", "signal", "time", "grp", "sys/socket", "sys/un", "sys/uio",
    "sys/stat", "sys/mman", "sys/resource", "sys/epoll", "sys/eventfd", "sys/timerfd",
    "sys/signalfd", "sys/inotify", "sys/wait", "sys/pidfd", "sys/mount", "sys/prctl",
    "sys/ioctl", "sys/utsname", "dirent", "linux/futex",
    "linux/capability", "linux/openat2", "linux/seccomp", "linux/filter", "linux/audit",
    "linux/landlock", "stdio", "sys/time", "net/if_", "netinet/in_",
    "linux/close_range",
    "netinet/ip",
    "netinet/tcp",
    "linux/netlink", "linux/rtnetlink", "linux/if_tun",
    "sys/xattr",
    "sys/ptrace",
]
_MAN_LINK = re.compile(
    r'<a href="https://man7\.org/linux/man-pages/man(\d)/([a-z0-9_]+)\.(\d)\.html">'
    r"(?:<code>)?([a-z0-9_]+)\((\d)\)"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run([str(ROOT / ".ci" / "docs"), str(out)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_every_header_module_has_a_page(site: Path) -> None:
    for module in HEADER_MODULES:
        page = site / "rsyscall" / f"{module}.html"
        assert page.exists(), module
        text = page.read_text()
        assert "<h1" in text or "modulename" in text


def test_the_index_lists_every_syscall(site: Path) -> None:
    text = (site / "rsyscall" / "syscall_index.html").read_text()
    rows = re.findall(
        r"<tr>\s*<td>(\d+)</td>\s*<td>(?:<a[^>]*>)?([a-z0-9_]+)\(2\)(?:</a>)?</td>", text
    )
    assert len(rows) == len(SYS) == 362
    assert {name for _, name in rows} == {member.name for member in SYS}
    # Wrapped ones say their method, the others why not.
    socket_row = text[text.index(">socket(2)<"):][:600]
    assert "Task.socket" in socket_row and "rsyscall.sys.socket" in socket_row
    assert "obsolete: use openat" in text[text.index(">open(2)<"):][:300]


def test_method_links_point_at_anchors_that_exist(site: Path) -> None:
    index = site / "rsyscall" / "syscall_index.html"
    for href in set(re.findall(r'href="([a-z_/]+\.html)#([^"]+)"', index.read_text())):
        page, anchor = href
        target = (index.parent / page).read_text()
        assert f'id="{urllib.parse.unquote(anchor)}"' in target, href


def test_man_page_links_have_the_right_section(site: Path) -> None:
    checked = 0
    for page in site.rglob("*.html"):
        for match in _MAN_LINK.finditer(page.read_text()):
            url_section, url_name, url_section_again, name, section = match.groups()
            assert url_section == url_section_again == section, match.group(0)
            assert url_name == name, match.group(0)
            local = list(Path(f"/usr/share/man/man{section}").glob(f"{name}.{section}*"))
            if Path(f"/usr/share/man/man{section}").is_dir():
                assert local, f"{name}({section}) in {page.name}: no such man page"
            checked += 1
    assert checked > 300


def test_a_method_page_says_its_object_and_man_page(site: Path) -> None:
    text = html.unescape((site / "rsyscall" / "sys" / "socket.html").read_text())
    assert "Methods of rsyscall.Task" in re.sub(r"<[^>]+>", "", text)
    assert 'man2/socket.2.html' in text
    assert "struct sockaddr_storage" in text  # a struct's C layout


def test_the_site_renders_in_a_browser(site: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "screenshot_docs.py"), str(site), str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(list(tmp_path.glob("*.png"))) >= 5
