"""A small client for ComfyUI's HTTP API and its progress websocket, on the standard library only."""
from __future__ import annotations

import base64
import logging
import json
import os
import socket
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable, Optional

from .errors import InputError


class ComfyClient:
    def __init__(self, server: str, client_id: str):
        self.server = server.rstrip("/")
        self.client_id = client_id

    # --- HTTP --------------------------------------------------------------------------------------
    def _request(self, path: str, payload: dict | None = None, timeout: float = 60.0) -> bytes:
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.server + path, data=data,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")
            raise InputError(f"ComfyUI refused {path} ({exc.code}): {_summarise_error(body)}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise InputError(f"cannot reach ComfyUI at {self.server} ({exc}); is the server running?") from None

    def object_info(self) -> dict:
        return json.loads(self._request("/object_info"))

    def queue(self, prompt: dict) -> str:
        reply = json.loads(self._request("/prompt", {"prompt": prompt, "client_id": self.client_id}))
        return reply["prompt_id"]

    def history(self, prompt_id: str) -> Optional[dict]:
        return json.loads(self._request(f"/history/{prompt_id}")).get(prompt_id)

    def download(self, item: dict, out_dir: Path) -> Path:
        query = urllib.parse.urlencode({k: item.get(k, "") for k in ("filename", "subfolder", "type")})
        data = self._request(f"/view?{query}", timeout=300)
        target = Path(out_dir) / item.get("subfolder", "") / item["filename"]
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        return target

    def download_outputs(self, entry: dict, out_dir: Path) -> list[Path]:
        files = []
        for node_out in entry.get("outputs", {}).values():
            for items in node_out.values():
                for item in items if isinstance(items, list) else []:
                    if isinstance(item, dict) and "filename" in item:
                        files.append(self.download(item, out_dir))
        return files

    # --- progress ----------------------------------------------------------------------------------
    def follow(self, prompt_id: str, timeout: float, on_event: Callable[[str, dict], None]) -> dict:
        """Streams websocket events for this prompt until it finishes; returns its history entry."""
        deadline = time.monotonic() + timeout
        try:
            ws = WebSocket(self.server, f"/ws?clientId={self.client_id}")
        except OSError as exc:
            logging.getLogger("atop").warning("no progress stream from %s (%s); polling the history instead",
                                              self.server, exc)
            ws = None
        try:
            while time.monotonic() < deadline:
                entry = self.history(prompt_id)
                if entry and entry.get("status", {}).get("status_str") in ("success", "error"):
                    return entry
                if ws is None:
                    time.sleep(0.5)
                    continue
                message = ws.receive(timeout=0.5)
                if message is not None:
                    event = json.loads(message)
                    data = event.get("data", {})
                    if data.get("prompt_id") in (None, prompt_id):
                        on_event(event.get("type", ""), data)
        finally:
            if ws is not None:
                ws.close()
        raise InputError(f"prompt {prompt_id} did not finish within {timeout:.0f} s")


def _summarise_error(body: str) -> str:
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return body[:500]
    parts = [data.get("error", {}).get("message", "")]
    for node_id, node_err in data.get("node_errors", {}).items():
        for err in node_err.get("errors", []):
            parts.append(f"node {node_id} ({node_err.get('class_type')}): {err.get('message')} {err.get('details', '')}")
    return "; ".join(p for p in parts if p)


class WebSocket:
    """Text frames from a server (RFC 6455), enough for ComfyUI's status stream."""

    def __init__(self, server: str, path: str):
        url = urllib.parse.urlparse(server)
        self.sock = socket.create_connection((url.hostname, url.port or 80), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {path} HTTP/1.1\r\nHost: {url.hostname}:{url.port or 80}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(request.encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise OSError("websocket handshake failed")
            self.buffer += chunk
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise OSError("websocket upgrade refused")

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("websocket closed")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def receive(self, timeout: float) -> Optional[str]:
        self.sock.settimeout(timeout)
        try:
            b0, b1 = self._read(2)
        except (socket.timeout, TimeoutError):
            return None
        self.sock.settimeout(30)
        length = b1 & 0x7F
        if length == 126:
            length = struct.unpack(">H", self._read(2))[0]
        elif length == 127:
            length = struct.unpack(">Q", self._read(8))[0]
        mask = self._read(4) if b1 & 0x80 else None
        payload = self._read(length)
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        opcode = b0 & 0x0F
        return payload.decode(errors="replace") if opcode == 1 else None

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
