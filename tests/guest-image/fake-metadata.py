#!/usr/bin/python3
"""One-request metadata responder for the guest image self-test.

QEMU's user-mode network runs it once per guest connection to 169.254.169.254:80
(`guestfwd=tcp:169.254.169.254:80-cmd:...`), with the connection as stdin and stdout. It answers
one HTTP GET from the files in DIR (argv[1]):
  /openstack/latest/meta_data.json -> DIR/meta_data.json
  /openstack/latest/user_data      -> DIR/user_data (404 when absent)
and appends the request line to DIR/requests.log. Standard library only; no network of its own.
"""
import os
import sys

ROUTES = {
    "/openstack/latest/meta_data.json": ("meta_data.json", "application/json"),
    "/openstack/latest/user_data": ("user_data", "application/octet-stream"),
}


def main() -> None:
    root = sys.argv[1]
    rfile, wfile = sys.stdin.buffer, sys.stdout.buffer
    request = rfile.readline().decode("latin-1").strip()
    while rfile.readline() not in (b"\r\n", b"\n", b""):
        pass  # headers
    parts = request.split()
    path = parts[1] if len(parts) >= 2 else ""
    with open(os.path.join(root, "requests.log"), "a", encoding="utf-8") as log:
        log.write(request + "\n")
    status, ctype, body = "404 Not Found", "text/plain", b"not found\n"
    if len(parts) >= 2 and parts[0] == "GET" and path in ROUTES:
        name, kind = ROUTES[path]
        try:
            with open(os.path.join(root, name), "rb") as f:
                status, ctype, body = "200 OK", kind, f.read()
        except FileNotFoundError:
            pass
    head = (
        f"HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    wfile.write(head.encode("latin-1") + body)
    wfile.flush()


if __name__ == "__main__":
    main()
