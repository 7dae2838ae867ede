"""Progress callbacks for long loops: ``on_step(step, total, preview)``; nodes turn them into ComfyUI
progress bars and interrupt checks, the CLI into log lines."""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Optional

OnStep = Callable[[int, int, Optional[Any]], None]


def no_progress(step: int, total: int, preview: Any = None) -> None:
    return None


def logging_progress(name: str, every_s: float = 5.0, logger: logging.Logger | None = None) -> OnStep:
    """Logs '<name>: step/total' at most every ``every_s`` seconds, and at the end."""
    log = logger or logging.getLogger("atop")
    last = [0.0]

    def on_step(step: int, total: int, preview: Any = None) -> None:
        now = time.monotonic()
        if step >= total or now - last[0] >= every_s:
            last[0] = now
            log.info("%s: %d/%d", name, step, total)

    return on_step
