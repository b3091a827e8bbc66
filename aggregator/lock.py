"""Process locks: `flock` on a file. The kernel drops the lock when the holder exits, even on a
crash or SIGKILL, so a stale lock never blocks anyone. Cron runs take one beside the database
(and skip when it is held); writing static files takes one in the output folder (and waits)."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from aggregator.errors import LockedError


class RunLock:
    """`wait`: seconds to wait for the holder to finish before giving up (0: give up at
    once). `note_pid`: write the holder's pid into the file, for the message another process
    gets; off for a lock inside a published folder, whose files stay untouched when nothing
    changed."""

    POLL = 0.05  # seconds between tries while waiting

    def __init__(self, path: str | os.PathLike[str], wait: float = 0.0,
                 holder: str = "another run", note_pid: bool = True) -> None:
        self.path = Path(path)
        self.wait = wait
        self.holder = holder
        self.note_pid = note_pid
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(self.POLL)
                    continue
                holder = os.read(fd, 64).decode(errors="replace").strip()
                os.close(fd)
                pid = f" (pid {holder})" if holder else ""
                waited = f" after waiting {self.wait:g} s" if self.wait else ""
                raise LockedError(f"{self.holder} holds {self.path}{pid}{waited}") from None
        if self.note_pid:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            if self.note_pid:
                os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
