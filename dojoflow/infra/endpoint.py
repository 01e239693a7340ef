"""A small HTTP endpoint the harness serves to one sandbox: on a unix socket (bound into the sandbox, the
only way out of its network namespace) or on a loopback TCP port (for the non-isolated ``local`` backend).

The LLM gateway (``llm/gateway.py``) and the validation endpoint (``agents/external/validation.py``) are
both one function ``handle(HttpRequest) -> HttpReply`` served by :class:`Endpoint` (the standard library's
threading HTTP server: one thread per connection, nothing to install).
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MAX_BODY_BYTES = 256 * 1024 * 1024


@dataclass
class HttpRequest:
    """One request: method, path (query string included), lower-cased headers, body bytes."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON (raises ValueError when it is not)."""
        return json.loads(self.body or b"null")


@dataclass
class HttpReply:
    """One reply: status, body bytes, headers."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})

    @classmethod
    def of_json(cls, status: int, data: Any) -> HttpReply:
        """A JSON reply."""
        return cls(status, json.dumps(data).encode())


Handler = Callable[[HttpRequest], HttpReply]


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def _handler_class(handle: Handler) -> type[BaseHTTPRequestHandler]:
    class RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                reply = HttpReply.of_json(413, {"error": {"message": f"request body over {MAX_BODY_BYTES} bytes"}})
                self.close_connection = True
            else:
                body = self.rfile.read(length) if length else b""
                request = HttpRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                try:
                    reply = handle(request)
                except Exception as exc:  # noqa: BLE001 - a bug in a handler must not kill the endpoint
                    reply = HttpReply.of_json(500, {"error": {"message": f"dojoflow endpoint error: "
                                                                         f"{type(exc).__name__}: {exc}"}})
            self.send_response(reply.status)
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815 - http.server's naming

        def address_string(self) -> str:  # a unix socket has no client address
            return "sandbox"

        def log_message(self, *args: Any) -> None:
            pass

    return RequestHandler


class Endpoint:
    """``handle`` served in a daemon thread until :meth:`close`; ``unix_path`` or a loopback ``port``."""

    def __init__(self, handle: Handler, *, unix_path: Path | None = None, port: int = 0,
                 socket_mode: int = 0o666) -> None:
        handler = _handler_class(handle)
        self.unix_path = Path(unix_path) if unix_path is not None else None
        if self.unix_path is not None:
            self.unix_path.parent.mkdir(parents=True, exist_ok=True)
            self.unix_path.unlink(missing_ok=True)
            self.server: socketserver.BaseServer = _UnixHTTPServer(str(self.unix_path), handler)
            os.chmod(self.unix_path, socket_mode)  # the sandbox's uid connects to it
        else:
            self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` of a TCP endpoint."""
        if not isinstance(self.server, ThreadingHTTPServer):
            raise ValueError("a unix-socket endpoint has no URL")
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        """Stop serving and remove the socket file."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
        if self.unix_path is not None:
            self.unix_path.unlink(missing_ok=True)


def unix_request(path: Path, method: str, url_path: str, body: bytes = b"", headers: dict[str, str] | None = None,
                 timeout_s: float = 30.0) -> tuple[int, bytes]:
    """One HTTP request over a unix socket (for tests and the harness's own checks)."""
    import http.client

    class Connection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout_s)
            self.sock.connect(str(path))

    conn = Connection("localhost", timeout=timeout_s)
    try:
        conn.request(method, url_path, body=body, headers=headers or {})
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()
