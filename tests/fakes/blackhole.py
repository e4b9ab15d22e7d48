"""A loopback listener whose accept queue is full: a client's connect waits for its own timeout.

Linux drops a SYN when the listener's accept queue is full, so a TCP connect to it neither succeeds nor is
refused: the client retransmits until its connect timeout, as it would towards a black-holed address. The
queue is filled by the fixture's own connections, none of them ever accepted.
"""

from __future__ import annotations

import socket
from types import TracebackType

FILL_TIMEOUT = 0.3  # seconds a filling connect may take before the queue is taken as full


class BlackHole:
    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self._fillers: list[socket.socket] = []
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> BlackHole:
        self._fill()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        for filler in self._fillers:
            filler.close()
        self._listener.close()

    def _fill(self) -> None:
        """Connect until a connect is neither accepted into the queue nor refused: the queue is full."""
        address = self._listener.getsockname()
        for _ in range(16):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.settimeout(FILL_TIMEOUT)
            try:
                filler.connect(address)
            except TimeoutError:
                filler.close()
                return
            self._fillers.append(filler)
        raise RuntimeError("the accept queue never filled: connects to it would not wait")
