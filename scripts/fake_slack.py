#!/usr/bin/env python3
"""A stand-in for Slack's incoming webhooks on 127.0.0.1 (for the quick start): prints every
message it receives and answers 200 "ok", as Slack does."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            msg = json.loads(body)
            line = f"Slack <- {msg.get('channel', '(default channel)')}: {msg.get('text', '')}"
        except ValueError:
            line = f"Slack <- (not JSON) {body[:80]!r}"
        print(line, flush=True)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 45800
    ThreadingHTTPServer(("127.0.0.1", port), Hook).serve_forever()
