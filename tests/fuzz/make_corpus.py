#!/usr/bin/python3
"""Writes the seed corpus of codec_fuzz (tests/fuzz/corpus/): small realistic request streams,
each behind the driver's header (codec_fuzz.cpp: one flags byte, then 2 bytes per cut point).

    tests/fuzz/make_corpus.py    # rewrites tests/fuzz/corpus/*.seed (the files are checked in)
"""
import struct
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"

WRK = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
BROWSER = (b"GET /json?x=1 HTTP/1.1\r\nHost: localhost:8080\r\n"
           b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
           b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
           b"Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n"
           b"Connection: keep-alive\r\nCookie: a=1; b=two\r\nUpgrade-Insecure-Requests: 1\r\n"
           b"Sec-Fetch-Dest: document\r\nPriority: u=0, i\r\n\r\n")
PLAIN = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"


def header(cuts=(), high_water=0, move=False, mid_body=False):
    """The driver's prefix: flags byte (cut count, high-water choice, move, pollution) + cuts."""
    assert len(cuts) <= 15 and 0 <= high_water <= 3
    flags = len(cuts) | high_water << 4 | (0x40 if move else 0) | (0x80 if mid_body else 0)
    return bytes([flags]) + b"".join(struct.pack("<H", c) for c in cuts)


SEEDS = {
    # wrk's request, whole and cut after every few bytes.
    "wrk-get": header() + WRK,
    "wrk-get-cut": header(cuts=range(3, len(WRK), 3)[:15], high_water=1) + WRK,
    # A browser's request: many headers, a query string.
    "browser-get": header(cuts=(17, 90, 200)) + BROWSER,
    # Pipelined mixed requests, including HEAD (no body in the answer) and /bytes.
    "pipelined-mix": header(cuts=(10, 60, 61, 61, 130), move=True)
    + b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /json HTTP/1.1\r\nHost: x\r\n\r\n"
      b"HEAD /bytes?n=100 HTTP/1.1\r\nHost: x\r\n\r\nGET /bytes?n=10 HTTP/1.1\r\nHost: x\r\n\r\n"
      b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
    # wrk with a pipelining script: 16 requests in one write, a tiny high-water mark.
    "wrk-pipeline-16": header(cuts=(100, 400), high_water=2) + PLAIN * 16,
    # A chunked POST (extension, trailer, a chunk that looks like a request), then a GET.
    "chunked-post": header(cuts=(50, 70))
    + b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      b"5;name=value\r\nhello\r\n1e\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n\r\n0\r\nX-Trailer: 1\r\n\r\n"
      b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n",
    # A Content-Length body, then a GET; polluted mid-body before the reset run.
    "content-length-post": header(cuts=(40,), mid_body=True)
    + b"POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello worldGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    # HTTP/1.0 keep-alive, then a plain HTTP/1.0 request (closes), then one never answered.
    "http10": header()
    + b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /json HTTP/1.0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    # Connection: close in the middle of a pipeline.
    "connection-close": header(cuts=(30,))
    + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /json HTTP/1.1\r\nHost: x\r\n\r\n",
    # Bare LF line ends (http_parser accepts them).
    "lf-only": header() + b"GET / HTTP/1.1\nHost: x\n\nGET /json HTTP/1.1\nHost: x\n\n",
    # Malformed: no version, a NUL in a header value, a space before the colon.
    "malformed-line": header() + b"GARBAGE\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "nul-in-header": header(cuts=(25,)) + b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "space-before-colon": header() + b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    # Limits: a 10^15 Content-Length (413 before the body), an invalid chunk size, conflicting lengths.
    "content-length-huge": header() + b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000000\r\n\r\n",
    "bad-chunk-size": header() + b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "conflicting-lengths": header()
    + b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    # Request-smuggling shapes (RFC 9112 5.2, 6.1, 7.1): each is a 400 (or 501) and a close.
    "chunk-data-no-crlf": header(cuts=(60,))
    + b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXY0\r\n\r\n"
      b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "chunk-size-space": header()
    + b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5 3\r\nhello\r\n0\r\n\r\n",
    "chunk-size-lf": header()
    + b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n",
    "chunk-size-overflow": header()
    + b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nhello\r\n0\r\n\r\n",
    "chunked-trailer-fold": header(cuts=(70,))
    + b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n 2\r\n\r\n",
    "cl-and-te": header()
    + b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te-chunked-twice": header()
    + b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te-gzip-chunked": header()
    + b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "obs-fold": header(cuts=(35,))
    + b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "equal-lengths": header()
    + b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    # An Upgrade request (closes after the answer) and an absolute-form target.
    "upgrade": header() + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    "absolute-form": header() + b"GET http://127.0.0.1:8080/json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
}


def main() -> None:
    CORPUS.mkdir(exist_ok=True)
    for old in CORPUS.glob("*.seed"):
        old.unlink()
    for name, data in SEEDS.items():
        (CORPUS / f"{name}.seed").write_bytes(data)
    print(f"wrote {len(SEEDS)} seeds to {CORPUS}")


if __name__ == "__main__":
    main()
