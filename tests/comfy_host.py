"""A real headless ComfyUI for tests: started from ``main.py --cpu`` on a free loopback port with its own
input/output/temp/user folders and database, the pack linked in through ``--extra-model-paths-config``.

ComfyUI is taken from ``ATOP_COMFYUI_DIR`` (any checkout), else from ``comfyui/`` in the environment running
the tests (``.venv/comfyui``, or ``.venv-latest/comfyui``: 0.3.75, set up by scripts/setup_env.sh)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
PACK_DIR_NAME = "atop_part_articulation"


def comfyui_dir() -> Path:
    path = Path(os.environ.get("ATOP_COMFYUI_DIR") or Path(sys.prefix) / "comfyui")
    if not (path / "main.py").exists():
        raise FileNotFoundError(
            f"no ComfyUI found at {path}; run scripts/setup_env.sh or set ATOP_COMFYUI_DIR to a ComfyUI checkout"
        )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyHost:
    """One ComfyUI server process. ``base`` holds everything it writes."""

    def __init__(self, base: Path, *, models: dict[str, Path] | None = None, extra_args: list[str] | None = None):
        self.base = Path(base)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.models = models or {}
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen | None = None
        self.log_path = self.base / "comfyui.log"
        self.client_id = uuid.uuid4().hex

    # --- folders ---------------------------------------------------------------------------------
    @property
    def input_dir(self) -> Path:
        return self.base / "input"

    @property
    def output_dir(self) -> Path:
        return self.base / "output"

    def _write_config(self) -> Path:
        for sub in ("input", "output", "temp", "user/default", "custom_nodes"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        link = self.base / "custom_nodes" / PACK_DIR_NAME
        if not link.exists():
            link.symlink_to(ROOT, target_is_directory=True)
        # Skip the first-visit template dialog in browser tests.
        (self.base / "user" / "default" / "comfy.settings.json").write_text(
            json.dumps({"Comfy.TutorialCompleted": True})
        )
        lines = ["atop_tests:", f"  custom_nodes: {self.base / 'custom_nodes'}"]
        for key, path in self.models.items():
            lines.append(f"  {key}: {path}")
        config = self.base / "extra_model_paths.yaml"
        config.write_text("\n".join(lines) + "\n")
        return config

    # --- process ---------------------------------------------------------------------------------
    def start(self, timeout: float = 180.0) -> "ComfyHost":
        config = self._write_config()
        cmd = [
            sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
            "--disable-auto-launch", "--disable-api-nodes",
            "--database-url", f"sqlite:///{self.base / 'comfyui.db'}",
            "--input-directory", str(self.base / "input"), "--output-directory", str(self.base / "output"),
            "--temp-directory", str(self.base / "temp"), "--user-directory", str(self.base / "user"),
            "--extra-model-paths-config", str(config),
            *self.extra_args,
        ]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=comfyui_dir(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.proc.returncode} during start-up:\n{self.log()[-4000:]}")
            try:
                if requests.get(f"{self.url}/object_info", timeout=5).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"ComfyUI did not answer within {timeout:.0f} s:\n{self.log()[-4000:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # --- HTTP API ---------------------------------------------------------------------------------
    def object_info(self) -> dict:
        return requests.get(f"{self.url}/object_info", timeout=30).json()

    def post_prompt(self, prompt: dict) -> requests.Response:
        return requests.post(f"{self.url}/prompt", json={"prompt": prompt, "client_id": self.client_id}, timeout=30)

    def queue(self, prompt: dict) -> str:
        resp = self.post_prompt(prompt)
        if resp.status_code != 200:
            raise AssertionError(f"POST /prompt failed ({resp.status_code}): {resp.text[:3000]}")
        return resp.json()["prompt_id"]

    def history(self, prompt_id: str) -> dict | None:
        data = requests.get(f"{self.url}/history/{prompt_id}", timeout=30).json()
        return data.get(prompt_id)

    def wait(self, prompt_id: str, timeout: float = 600.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.history(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None and (
                entry["status"].get("status_str") in ("success", "error")
            ):
                return entry
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI died while running the prompt:\n{self.log()[-4000:]}")
            time.sleep(0.5)
        raise TimeoutError(f"prompt {prompt_id} did not finish within {timeout:.0f} s")

    def interrupt(self) -> None:
        requests.post(f"{self.url}/interrupt", timeout=30)

    def queue_status(self) -> dict:
        return requests.get(f"{self.url}/queue", timeout=30).json()

    def output_files(self, entry: dict) -> list[Path]:
        """Every file named in a finished prompt's outputs (ui 'images', '3d' results, ...), resolved."""
        files = []
        for node_out in entry.get("outputs", {}).values():
            for items in node_out.values():
                if not isinstance(items, list):
                    continue
                for item in items:
                    if isinstance(item, dict) and "filename" in item:
                        # ComfyUI puts its temp files in <--temp-directory>/temp.
                        folder = {"output": self.output_dir, "temp": self.base / "temp" / "temp", "input": self.input_dir}[
                            item.get("type", "output")
                        ]
                        files.append(folder / item.get("subfolder", "") / item["filename"])
        return files


def execution_error(entry: dict) -> dict | None:
    for kind, data in entry.get("status", {}).get("messages", []):
        if kind == "execution_error":
            return data
    return None
