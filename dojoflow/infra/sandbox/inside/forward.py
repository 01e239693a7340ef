"""The launcher of a whole-episode program inside a network-less sandbox: loopback ports forwarded to
unix sockets, then the program.

``python forward.py --listen 5000=/run/dojoflow/validate.sock --listen 8000=/run/dojoflow/llm.sock -- cmd ...``

The sandbox has its own network namespace with only a loopback interface, so a TCP connection can reach
nothing but this process. Each ``--listen PORT=SOCKET`` accepts connections on ``127.0.0.1:PORT`` and
pipes their bytes to and from a new connection to ``SOCKET`` (a unix socket bound into the sandbox by the
harness: the LLM gateway, the validation endpoint). Then the command runs as this process's child; its
exit status is this process's exit status, and SIGTERM/SIGINT are passed on to it. When this process ends,
the sandbox's PID namespace ends with it, so nothing the program started outlives the episode.

Standard library only: dojoflow is not importable inside the sandbox.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading

BUFFER = 65536


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while True:
            data = source.recv(BUFFER)
            if not data:
                break
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock, how in ((target, socket.SHUT_WR), (source, socket.SHUT_RD)):
            try:
                sock.shutdown(how)
            except OSError:
                pass


def _serve(listener: socket.socket, path: str) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(path)
        except OSError:
            client.close()
            upstream.close()
            continue
        threading.Thread(target=_pipe, args=(client, upstream), daemon=True).start()
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()


def listen(port: int, path: str) -> socket.socket:
    """Start forwarding ``127.0.0.1:port`` to the unix socket ``path`` (in a daemon thread)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    threading.Thread(target=_serve, args=(listener, path), daemon=True).start()
    return listener


def parse(argv: list[str]) -> tuple[list[tuple[int, str]], list[str]]:
    """(forwards, command) from the command line."""
    forwards: list[tuple[int, str]] = []
    rest = list(argv)
    while rest and rest[0] == "--listen":
        port, _, path = rest[1].partition("=")
        forwards.append((int(port), path))
        rest = rest[2:]
    if not rest or rest[0] != "--":
        raise SystemExit("usage: forward.py [--listen PORT=SOCKET]... -- command [args]")
    return forwards, rest[1:]


def main(argv: list[str]) -> int:
    """Start the forwards, run the command, return its exit status."""
    forwards, command = parse(argv)
    for port, path in forwards:
        listen(port, path)
    try:
        child = subprocess.Popen(command)
    except OSError as exc:
        print(f"dojoflow: cannot start the agent command {command[0]!r}: {exc}", file=sys.stderr)
        return 127

    def relay(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, relay)
    code = child.wait()
    sys.stdout.flush()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    os._exit(main(sys.argv[1:]))
