#!/usr/bin/python3
"""Open an HTML page in a real headless browser (Debian's chromium) and judge it: no console
error, no uncaught exception, no refused or failed resource, and every chart visible (each
<figure class="chart"> holds an image that loaded, and every <img> and top-level <svg> has a
non-zero rendered size). Optionally saves a screenshot of the first screens.

Speaks the Chrome DevTools Protocol over one WebSocket to the browser (--remote-debugging-port=0;
the port is read from DevToolsActivePort in the profile directory), with a minimal WebSocket
client from the standard library: no PyPI package exists on these machines.

    browser_check.py PAGE.html [--screenshot OUT.png] [--min-charts N]

Exit status 0 when the page passes, 1 when it fails (each failure printed on its own line),
2 when the browser cannot be started.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field

CHROMIUM = os.environ.get("CBENCH_CHROMIUM", "chromium")
START_TIMEOUT_S = 30  # chromium's cold start on a busy 2-core machine took up to ~8 s
LOAD_TIMEOUT_S = 60  # a 300 KB page with inline PNGs loads in well under a second; this is slack
SETTLE_S = 0.5  # after the load event: time for late console messages (a timer's error) to arrive
VIEWPORT = (1280, 2000)  # the screenshot: the summary's first screens at a desktop width
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455's fixed key suffix

# Runs in the page: one entry per chart-like element, and every figure.chart without an image.
CHARTS_JS = r"""
(() => {
  const seen = [];
  const box = e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; };
  const shown = e => { const s = getComputedStyle(e); return s.display !== 'none' && s.visibility !== 'hidden' && s.opacity !== '0'; };
  for (const e of document.querySelectorAll('img, svg')) {
    if (e.tagName.toLowerCase() === 'svg' && e.parentElement && e.parentElement.closest('svg')) continue;
    const [w, h] = box(e);
    const img = e.tagName.toLowerCase() === 'img';
    seen.push({tag: e.tagName.toLowerCase(), name: (e.closest('figure') || e).dataset.chart || e.getAttribute('alt') || '',
               src: img ? (e.currentSrc || e.src || '').slice(0, 80) : '', width: w, height: h,
               loaded: img ? (e.complete && e.naturalWidth > 0) : true, visible: shown(e)});
  }
  const empty = Array.from(document.querySelectorAll('figure.chart'))
    .filter(f => !f.querySelector('img, svg')).map(f => f.dataset.chart || '?');
  return {charts: seen, empty: empty, title: document.title};
})()
"""


class WebSocket:
    """A WebSocket client (RFC 6455), text frames only: enough for the DevTools protocol."""

    def __init__(self, url: str, timeout_s: float):
        u = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout_s)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the browser closed the connection during the handshake")
            head += chunk
        head, self.buf = head.split(b"\r\n\r\n", 1)
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if b" 101 " not in head.split(b"\r\n")[0] or accept.encode() not in head:
            raise ConnectionError(f"no WebSocket upgrade: {head[:200]!r}")

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise ConnectionError("the browser closed the DevTools connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        head = bytes([0x80 | opcode])
        head += bytes([0x80 | n]) if n < 126 else (bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536
                                                   else bytes([0x80 | 127]) + struct.pack(">Q", n))
        mask = os.urandom(4)
        masked = bytes(b ^ mask[k % 4] for k, b in enumerate(payload))  # clients must mask (RFC 6455 5.3)
        self.sock.sendall(head + mask + masked)

    def send(self, text: str) -> None:
        self._send(0x1, text.encode())

    def recv(self) -> str:
        """The next whole text message; answers pings; raises ConnectionError on close."""
        parts = []
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exact(8))[0]
            mask = self._exact(4) if b1 & 0x80 else None
            data = self._exact(n)
            if mask:
                data = bytes(b ^ mask[k % 4] for k, b in enumerate(data))
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise ConnectionError("the browser closed the DevTools connection")
            if opcode == 0x9:
                self._send(0xA, data)
                continue
            if opcode in (0x0, 0x1, 0x2):
                parts.append(data)
                if b0 & 0x80:
                    return b"".join(parts).decode("utf-8", "replace")

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class DevTools:
    """Commands and events of one DevTools connection, one page session."""

    def __init__(self, ws: WebSocket):
        self.ws, self.next_id, self.events, self.session = ws, 0, [], None

    def call(self, method: str, params: dict | None = None, timeout_s: float = LOAD_TIMEOUT_S) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if self.session:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)
        raise TimeoutError(f"{method}: no answer in {timeout_s} s")

    def wait_event(self, name: str, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        for ev in self.events:
            if ev["method"] == name:
                return ev
        while time.monotonic() < deadline:
            ev = json.loads(self.ws.recv())
            if "method" in ev:
                self.events.append(ev)
                if ev["method"] == name:
                    return ev
        raise TimeoutError(f"no {name} in {timeout_s} s")

    def drain(self, seconds: float) -> None:
        """Collect the events that arrive within SECONDS."""
        self.ws.sock.settimeout(0.1)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                ev = json.loads(self.ws.recv())
            except (socket.timeout, TimeoutError):
                continue
            if "method" in ev:
                self.events.append(ev)
        self.ws.sock.settimeout(LOAD_TIMEOUT_S)


@dataclass
class Verdict:
    """What the browser saw: failures (empty when the page passes), the charts it measured."""
    failures: list[str] = field(default_factory=list)
    charts: list[dict] = field(default_factory=list)
    screenshot: str | None = None


def console_failures(events: list[dict]) -> list[str]:
    """Console errors, uncaught exceptions and error log entries (a refused or failed resource)."""
    out = []
    for ev in events:
        p = ev.get("params", {})
        if ev["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            out.append(f"console.{p['type']}: {text}")
        elif ev["method"] == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            out.append(f"uncaught exception: {d.get('exception', {}).get('description') or d.get('text')}")
        elif ev["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            out.append(f"{e.get('source', 'log')} error: {e.get('text')} {e.get('url', '')}".strip())
    return out


def chart_failures(seen: dict, min_charts: int) -> list[str]:
    out = [f"figure {name}: no image in it" for name in seen["empty"]]
    for c in seen["charts"]:
        label = c["name"] or c["src"] or c["tag"]
        if not c["loaded"]:
            out.append(f"{c['tag']} {label}: did not load")
        if not c["visible"] or c["width"] <= 0 or c["height"] <= 0:
            out.append(f"{c['tag']} {label}: not visible ({c['width']:.0f}x{c['height']:.0f} px)")
    if len(seen["charts"]) < min_charts:
        out.append(f"{len(seen['charts'])} charts on the page, expected at least {min_charts}")
    return out


def start_browser(profile: str) -> tuple[subprocess.Popen, str]:
    """Headless chromium on an ephemeral DevTools port; (process, browser WebSocket URL)."""
    cmd = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
           f"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check",
           "--disable-extensions", "--disable-background-networking", "--disable-dev-shm-usage",
           "about:blank"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = os.path.join(profile, "DevToolsActivePort")
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{CHROMIUM} exited {proc.returncode} before opening its DevTools port")
        if os.path.exists(marker):
            with open(marker, encoding="ascii") as f:
                lines = f.read().split()
            if len(lines) >= 2:
                return proc, f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{CHROMIUM}: no DevTools port within {START_TIMEOUT_S} s")


def inspect(dt: DevTools, url: str, screenshot: str | None, min_charts: int) -> Verdict:
    target = dt.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    dt.session = dt.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log"):
        dt.call(f"{domain}.enable")
    dt.call("Emulation.setDeviceMetricsOverride", {"width": VIEWPORT[0], "height": VIEWPORT[1],
                                                   "deviceScaleFactor": 1, "mobile": False})
    nav = dt.call("Page.navigate", {"url": url})
    verdict = Verdict()
    if nav.get("errorText"):
        verdict.failures.append(f"navigation to {url} failed: {nav['errorText']}")
        return verdict
    dt.wait_event("Page.loadEventFired", LOAD_TIMEOUT_S)
    dt.drain(SETTLE_S)
    seen = dt.call("Runtime.evaluate", {"expression": CHARTS_JS, "returnByValue": True})["result"]["value"]
    verdict.charts = seen["charts"]
    verdict.failures = console_failures(dt.events) + chart_failures(seen, min_charts)
    if screenshot:
        shot = dt.call("Page.captureScreenshot", {"format": "png"})
        with open(screenshot, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        verdict.screenshot = screenshot
    return verdict


def check_page(page: str, screenshot: str | None = None, min_charts: int = 0) -> Verdict:
    """Open PAGE in headless chromium and judge it (the module's docstring says what fails)."""
    profile = tempfile.mkdtemp(prefix="cbench-chromium-")
    proc = None
    try:
        proc, ws_url = start_browser(profile)
        dt = DevTools(WebSocket(ws_url, LOAD_TIMEOUT_S))
        try:
            return inspect(dt, "file://" + os.path.abspath(page), screenshot, min_charts)
        finally:
            try:
                dt.session = None
                dt.call("Browser.close", timeout_s=5)
            except (OSError, ConnectionError, RuntimeError, TimeoutError):
                pass
            dt.ws.close()
    finally:
        if proc is not None:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("page", help="the HTML file to open")
    p.add_argument("--screenshot", metavar="PNG", help="save a screenshot of the first screens here")
    p.add_argument("--min-charts", type=int, default=0, help="fail with fewer charts than this on the page")
    args = p.parse_args(argv)
    try:
        verdict = check_page(args.page, args.screenshot, args.min_charts)
    except (RuntimeError, OSError, TimeoutError) as exc:
        print(f"browser_check: {exc}", file=sys.stderr)
        return 2
    for line in verdict.failures:
        print(f"browser_check: {args.page}: {line}", file=sys.stderr)
    print(f"browser_check: {args.page}: {len(verdict.charts)} charts visible, "
          f"{len(verdict.failures)} failures" + (f"; screenshot {verdict.screenshot}" if verdict.screenshot else ""))
    return 1 if verdict.failures else 0


if __name__ == "__main__":
    sys.exit(main())
