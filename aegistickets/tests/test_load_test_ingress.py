"""The load tests' ingress (scripts/lib/ingress.py, nginx standing in for the ALB) routes like the Helm chart's
Ingress: checkout to gunicorn's checkout lane, everything else to its main port."""

import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from scripts.lib.ingress import nginx_path, running_ingress
from scripts.lib.processes import free_port

pytestmark = pytest.mark.skipif(nginx_path() is None, reason="needs nginx (apt-get install nginx-light)")


def upstream(name: str) -> ThreadingHTTPServer:
    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"{name} {self.headers['Host']}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


PATHS = ("/", "/api/checkout", "/checkout/", "/checkout/x", "/api/checkout/x", "/api/basket", "/readyz")


def test_checkout_goes_to_the_lane_and_the_rest_to_the_main_port():
    app, lane = upstream("app"), upstream("lane")
    port = free_port(18390, 18399)
    try:
        with running_ingress(port=port, app_port=app.server_address[1], lane_port=lane.server_address[1]):
            answers = {}
            for path in PATHS:
                for _ in range(50):  # nginx takes a moment to listen
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:  # noqa: S310 - loopback URL of the test ingress
                            answers[path] = response.read().decode()
                        break
                    except OSError:
                        threading.Event().wait(0.1)
    finally:
        app.shutdown()
        lane.shutdown()

    host = f"127.0.0.1:{port}"  # the shopper's Host reaches the app (links in API answers use it)
    assert answers == {
        "/": f"app {host}",
        "/api/checkout": f"lane {host}",
        "/checkout/": f"lane {host}",
        "/checkout/x": f"lane {host}",
        "/api/checkout/x": f"app {host}",
        "/api/basket": f"app {host}",
        "/readyz": f"app {host}",
    }
