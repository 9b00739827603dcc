"""Where stream lines go: a file (JSON lines) or a TCP peer (`resviz watch tcp://HOST:PORT`).

Lines go through a bounded queue to a writer thread, so training never waits on the disk or the
network: when the queue is full, or the peer has gone, a line is dropped and counted, and the
first loss is said once on stderr. Nothing here raises into the training loop.
"""

from __future__ import annotations

import queue
import socket
import sys
import threading
from typing import Optional

#: Lines waiting for the writer before new ones are dropped.
QUEUE = 1024


class Sink:
    def __init__(self, out: str, maxsize: int = QUEUE, connect_timeout: float = 10.0):
        self.out = str(out)
        self.dropped = 0
        self.written = 0
        self.error: Optional[str] = None
        self._q: "queue.Queue[Optional[bytes]]" = queue.Queue(maxsize)
        self._timeout = connect_timeout
        self._warned = False
        self._thread = threading.Thread(target=self._run, name="resviz-sink", daemon=True)
        self._thread.start()

    def put(self, line: str) -> None:
        """Queue one line (without its newline); never blocks, never raises."""
        if self.error is not None:
            self._drop(1)
            return
        try:
            self._q.put_nowait(line.encode("utf-8") + b"\n")
        except queue.Full:
            self._drop(1, "the writer is behind (queue full)")

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (waiting at most `timeout` s) and close; say what was lost."""
        try:
            self._q.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(timeout)
        if self.dropped:
            why = f": {self.error}" if self.error else ""
            print(f"resviz_torch: {self.dropped} of {self.dropped + self.written} stream lines "
                  f"to {self.out} were dropped{why}", file=sys.stderr)

    def _drop(self, n: int, why: Optional[str] = None) -> None:
        self.dropped += n
        if not self._warned:
            self._warned = True
            print(f"resviz_torch: dropping stream lines to {self.out} "
                  f"({why or self.error}); training goes on", file=sys.stderr)

    def _open(self):
        if self.out.startswith("tcp://"):
            host, _, port = self.out[len("tcp://"):].rpartition(":")
            s = socket.create_connection((host.strip("[]"), int(port)), timeout=self._timeout)
            s.settimeout(None)
            return s.sendall, s.close
        f = open(self.out, "wb")

        def write(data: bytes) -> None:
            f.write(data)
            f.flush()  # whole lines as they come: `resviz watch FILE` follows the file

        return write, f.close

    def _run(self) -> None:
        try:
            write, close = self._open()
        except (OSError, ValueError) as e:
            self.error = f"cannot open: {e}"
            write = close = None
        while True:
            line = self._q.get()
            if line is None:
                break
            if write is None:
                self._drop(1)
                continue
            try:
                write(line)
                self.written += 1
            except OSError as e:  # a peer that went away, a full disk
                self.error = f"write failed: {e}"
                write = None
                self._drop(1)
        if close is not None:
            try:
                close()
            except OSError:
                pass
