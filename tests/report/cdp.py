"""Open a page in headless Chromium and report what a reader would see: console errors, uncaught
exceptions, failed loads, and the size and load state of every chart (<img> and top-level <svg>),
then save a screenshot. Uses the DevTools protocol over a minimal WebSocket client (stdlib only:
there is no PyPI here).

`check(html_path, screenshot_path) -> Report`; `python3 cdp.py PAGE.html SHOT.png [--min-charts N]`
prints the report and exits 1 when the page has an error or a chart that is not visible.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse
from urllib.request import pathname2url, urlopen

CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                  "--disable-extensions", "--disable-background-networking", "--hide-scrollbars")
START_TIMEOUT_S = 30  # a cold chromium start on a busy 2-core machine took up to ~10 s
LOAD_TIMEOUT_S = 60
VIEWPORT = (1200, 900)
SHOT_MAX_HEIGHT = 4000  # the page's top (the summary and the overview charts); the whole report is ~70,000 px
# Every chart: an <img> (loaded, with natural size) or an <svg> not inside another one, and its
# on-screen box; visible when the box has area and no ancestor hides it.
CHART_PROBE = """(() => {
  const vis = el => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
    return {w: r.width, h: r.height, shown: s.display !== 'none' && s.visibility !== 'hidden'
      && el.offsetParent !== null}; };
  const out = [];
  document.querySelectorAll('img').forEach((el, i) => out.push(Object.assign(vis(el),
    {kind: 'img', i, alt: el.alt || '', loaded: el.complete && el.naturalWidth > 0})));
  document.querySelectorAll('svg').forEach((el, i) => { if (!el.parentElement.closest('svg'))
    out.push(Object.assign(vis(el), {kind: 'svg', i, alt: el.getAttribute('aria-label') || '', loaded: true})); });
  return JSON.stringify(out);
})()"""


@dataclass
class Report:
    errors: list = field(default_factory=list)   # console errors, exceptions, failed loads
    charts: list = field(default_factory=list)   # CHART_PROBE's records
    screenshot: str | None = None

    def bad_charts(self) -> list:
        return [c for c in self.charts if not (c["loaded"] and c["shown"] and c["w"] > 0 and c["h"] > 0)]

    def problems(self, min_charts: int = 1) -> list[str]:
        out = [f"console/page error: {e}" for e in self.errors]
        out += [f"chart not visible: {c['kind']} #{c['i']} ({c['alt'][:60]!r}): loaded={c['loaded']}"
                f" shown={c['shown']} size={c['w']:.0f}x{c['h']:.0f}" for c in self.bad_charts()]
        if len(self.charts) < min_charts:
            out.append(f"only {len(self.charts)} chart(s) on the page, expected at least {min_charts}")
        return out


class WebSocket:
    """A client WebSocket (RFC 6455) with just what DevTools needs: text frames, masking,
    64-bit lengths, continuation frames; ping is answered."""

    def __init__(self, url: str, timeout_s: float):
        u = urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout_s)
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("websocket handshake: connection closed")
            head += chunk
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status:
            raise ConnectionError(f"websocket handshake refused: {status!r}")
        self.buf = head.split(b"\r\n\r\n", 1)[1]

    def _recv_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("websocket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, text: str) -> None:
        data = text.encode()
        mask = os.urandom(4)
        n = len(data)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else
                                bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536 else
                                bytes([0x80 | 127]) + struct.pack(">Q", n))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def close(self) -> None:
        self.sock.close()

    def recv(self) -> str:
        parts = []
        while True:
            b0, b1 = self._recv_exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._recv_exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._recv_exact(8))[0]
            payload = self._recv_exact(n)
            op = b0 & 0x0F
            if op == 0x8:
                raise ConnectionError("websocket closed by the browser")
            if op == 0x9:  # ping: DevTools does not send them, but a pong costs nothing
                continue
            parts.append(payload)
            if b0 & 0x80:
                return b"".join(parts).decode()


class DevTools:
    def __init__(self, ws: WebSocket):
        self.ws, self.next_id, self.events = ws, 0, []

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_event(self, method: str, timeout_s: float) -> None:
        end = time.monotonic() + timeout_s
        while not any(e.get("method") == method for e in self.events):
            if time.monotonic() > end:
                raise TimeoutError(f"no {method} within {timeout_s} s")
            self.events.append(json.loads(self.ws.recv()))


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""


def _page_ws_url(profile: str, proc) -> str:
    """The first page target's DevTools URL (the port from the profile's DevToolsActivePort)."""
    port_file = os.path.join(profile, "DevToolsActivePort")
    end = time.monotonic() + START_TIMEOUT_S
    while not _read(port_file).strip():
        if proc.poll() is not None or time.monotonic() > end:
            raise RuntimeError(f"chromium did not start (exit status {proc.poll()})")
        time.sleep(0.1)
    port = int(_read(port_file).split()[0])
    while True:
        with urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = [t for t in json.load(r) if t.get("type") == "page"]
        if targets:
            return targets[0]["webSocketDebuggerUrl"]
        if time.monotonic() > end:
            raise RuntimeError("chromium has no page target")
        time.sleep(0.1)


def _errors(events: list) -> list[str]:
    out = []
    for e in events:
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            out.append((d.get("exception") or {}).get("description") or d.get("text", "exception"))
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            out.append(f"{p['entry'].get('text')} {p['entry'].get('url', '')}".strip())
    return out


def check(html_path: str, screenshot_path: str | None) -> Report:
    """Load HTML_PATH in headless chromium; collect errors and chart boxes; save a screenshot of
the page's top SHOT_MAX_HEIGHT pixels."""
    binary = chromium_binary()
    if binary is None:
        raise FileNotFoundError("chromium is not installed (scripts/deps.sh installs Debian's chromium)")
    profile = tempfile.mkdtemp(prefix="cbench-chromium-")
    proc = subprocess.Popen([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
                             f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ws = None
    try:
        ws = WebSocket(_page_ws_url(profile, proc), LOAD_TIMEOUT_S)
        dt = DevTools(ws)
        for domain in ("Page", "Runtime", "Log"):
            dt.call(f"{domain}.enable")
        dt.call("Page.navigate", url="file://" + pathname2url(os.path.abspath(html_path)))
        dt.wait_event("Page.loadEventFired", LOAD_TIMEOUT_S)
        rep = Report()
        rep.charts = json.loads(dt.call("Runtime.evaluate", expression=CHART_PROBE,
                                        returnByValue=True)["result"]["value"])
        rep.errors = _errors(dt.events)
        if screenshot_path:
            height = dt.call("Runtime.evaluate", expression="document.documentElement.scrollHeight",
                             returnByValue=True)["result"]["value"]
            clip = {"x": 0, "y": 0, "width": VIEWPORT[0], "height": min(height, SHOT_MAX_HEIGHT), "scale": 1}
            shot = dt.call("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip)
            os.makedirs(os.path.dirname(os.path.abspath(screenshot_path)), exist_ok=True)
            with open(screenshot_path, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
            rep.screenshot = screenshot_path
        return rep
    finally:
        if ws is not None:
            ws.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


def main(argv: list[str]) -> int:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("page")
    ap.add_argument("screenshot", nargs="?")
    ap.add_argument("--min-charts", type=int, default=1)
    a = ap.parse_args(argv)
    rep = check(a.page, a.screenshot)
    probs = rep.problems(a.min_charts)
    print(f"{a.page}: {len(rep.charts)} chart(s), {len(rep.errors)} error(s)"
          + (f"; screenshot {rep.screenshot}" if rep.screenshot else ""))
    for p in probs:
        print(f"  {p}")
    return 1 if probs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
