"""Where run metrics go: `metrics.jsonl`, TensorBoard event files and a live console line, behind one `Sink` seam."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from distdqn.config import Config


class Sink(Protocol):
    def write(self, step: int, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def _clean(value: Any) -> Any:
    """JSON-safe scalars (numpy types to Python, NaN/inf to None)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class JsonlSink:
    """Appends one JSON object per record to `metrics.jsonl` (append mode, so a resumed run continues the file)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "a", buffering=1)

    def write(self, step: int, record: dict[str, Any]) -> None:
        self._file.write(json.dumps({k: _clean(v) for k, v in record.items()}) + "\n")

    def close(self) -> None:
        self._file.close()


class TensorBoardSink:
    """Scalars to TensorBoard event files (tensorboardX: a small writer without TensorFlow or tensorboard itself)."""

    def __init__(self, logdir: Path, purge_step: int | None = None):
        from tensorboardX import SummaryWriter

        self._writer = SummaryWriter(str(logdir), purge_step=purge_step, flush_secs=10)

    def write(self, step: int, record: dict[str, Any]) -> None:
        for key, value in record.items():
            value = _clean(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "step":
                self._writer.add_scalar(key.replace(".", "/"), value, global_step=step)

    def close(self) -> None:
        self._writer.close()


class ConsoleProgress:
    """A live progress line: rewritten in place on a terminal, printed as plain lines (one per call) otherwise."""

    def __init__(self, stream=None, min_interval_s: float = 0.0):
        self._stream = stream or sys.stderr
        self._tty = hasattr(self._stream, "isatty") and self._stream.isatty()
        self._last = 0.0
        self._min_interval_s = min_interval_s
        self._width = 0

    def show(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self._min_interval_s:
            return
        self._last = now
        if self._tty:
            pad = max(self._width - len(text), 0)
            self._stream.write("\r" + text + " " * pad)
            self._width = len(text)
        else:
            self._stream.write(text + "\n")
        self._stream.flush()

    def message(self, text: str) -> None:
        """A line that stays (evaluation results, warnings) printed above the live line."""
        if self._tty and self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._width = 0
        self._stream.write(text + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._tty and self._width:
            self._stream.write("\n")
            self._stream.flush()


class MultiSink:
    def __init__(self, sinks: list[Sink]):
        self.sinks = sinks

    def add(self, sink: Sink) -> None:
        """One more sink for the records from now on (a sweep's trial adds its report to Tune)."""
        self.sinks.append(sink)

    def write(self, step: int, record: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink.write(step, record)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


def open_run_sinks(
    run_dir: Path, tensorboard: bool = True, purge_step: int | None = None, config: Config | None = None
) -> MultiSink:
    """metrics.jsonl, TensorBoard, and the experiment trackers that `config.run.trackers` names."""
    sinks: list[Sink] = [JsonlSink(run_dir / "metrics.jsonl")]
    if tensorboard:
        sinks.append(TensorBoardSink(run_dir / "tb", purge_step=purge_step))
    if config is not None and config.run.trackers:
        from distdqn.trackers import open_trackers  # the tracker libraries load only when a run asks for them

        try:
            sinks.extend(open_trackers(config, run_dir))
        except BaseException:
            MultiSink(sinks).close()
            raise
    return MultiSink(sinks)


def format_si(value: float) -> str:
    """1234567 -> '1.23M' for compact progress lines."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{unit}"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3g}"
