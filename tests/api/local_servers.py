"""Real HTTP(S) servers on 127.0.0.1 for the outbound-request tests: each route is a function
that writes the whole answer through the request handler, so a test can misbehave as a
hostile server would (trickle, lie about lengths, redirect anywhere)."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

Route = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LocalServer:
    port: int
    scheme: str = "http"
    requests: list[Seen] = field(default_factory=list)

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"


def answer(
    handler: BaseHTTPRequestHandler,
    body: bytes,
    status: int = 200,
    content_type: str = "image/png",
    headers: dict[str, str] | None = None,
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def redirect(handler: BaseHTTPRequestHandler, location: str, status: int = 302) -> None:
    answer(handler, b"", status=status, headers={"Location": location})


def _handler_class(server: LocalServer, routes: dict[str, Route]) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, 1 << 20)) if length else b""
            path = self.path.split("?", 1)[0]
            server.requests.append(Seen(self.command, self.path, dict(self.headers), body))
            route = routes.get(path)
            try:
                if route is None:
                    answer(self, b"not here", status=404, content_type="text/plain")
                else:
                    route(self)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                pass  # the client hung up on a hostile route: that is the point
            self.close_connection = True

        do_GET = do_POST = _serve

    return Handler


@contextmanager
def serve(
    routes: dict[str, Route], tls_files: tuple[Path, Path] | None = None
) -> Iterator[LocalServer]:
    """A threaded server on 127.0.0.1 and a free port for the duration of the block."""
    server = LocalServer(port=0, scheme="https" if tls_files else "http")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(server, routes))
    httpd.daemon_threads = True
    httpd.block_on_close = False
    if tls_files:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls_files[0]), str(tls_files[1]))
        # The handshake happens in the handler's thread, not in accept().
        httpd.socket = context.wrap_socket(
            httpd.socket, server_side=True, do_handshake_on_connect=False
        )
    server.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@contextmanager
def silent_listener() -> Iterator[tuple[socket.socket, int]]:
    """A bare listening socket on 127.0.0.1, to prove that nothing connected to it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    try:
        yield sock, sock.getsockname()[1]
    finally:
        sock.close()


def nobody_connected(sock: socket.socket, wait_s: float = 0.2) -> bool:
    sock.settimeout(wait_s)
    try:
        connection, _ = sock.accept()
    except TimeoutError:
        return True
    connection.close()
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def trickle(handler: BaseHTTPRequestHandler, data: bytes, every_s: float, for_s: float) -> None:
    """Write ``data`` one byte at a time, ``every_s`` apart, for at most ``for_s`` seconds."""
    end = time.monotonic() + for_s
    for byte in data:
        if time.monotonic() > end:
            return
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        time.sleep(every_s)


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 signed by itself (trusted by nobody)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
