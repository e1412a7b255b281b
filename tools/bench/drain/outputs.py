"""What a daemon has produced so far: lines of the agent's JSON-lines
files, rows of the collector's sample table; and the pid of a server
found by its listening port."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path


class LineCounter:
    """Complete lines appended to a growing file (read incrementally; a
    line cut between two writes counts once it ends)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.count = 0

    def poll(self) -> int:
        """Lines now."""
        try:
            with open(self.path, 'rb') as stream:
                stream.seek(self.offset)
                chunk = stream.read()
        except FileNotFoundError:
            return self.count
        end = chunk.rfind(b'\n') + 1
        if end:
            self.count += chunk.count(b'\n', 0, end)
            self.offset += end
        return self.count


def bad_json_lines(path: Path) -> int:
    """Lines of ``path`` that are not one JSON object (two workers append
    to the same file: this checks that their writes did not mix)."""
    bad = 0
    with open(path, 'rb') as stream:
        for line in stream:
            try:
                if not isinstance(json.loads(line), dict):
                    bad += 1
            except ValueError:
                bad += 1
    return bad


def truncate(path: Path) -> None:
    """Make ``path`` an empty file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b'')


def listening_inodes(table: str, port: int) -> set[str]:
    """Socket inodes listening on ``port`` in a /proc/net/tcp table."""
    found = set()
    with contextlib.suppress(OSError), open(table) as stream:
        next(stream, None)
        for line in stream:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == '0A' and int(local.rsplit(':', 1)[1], 16) == port:
                found.add(inode)
    return found


def listener_pid(port: int) -> int | None:
    """The process that listens on TCP ``port`` (None if not found, e.g.
    without the rights to read other users' descriptors)."""
    inodes = (listening_inodes('/proc/net/tcp', port)
              | listening_inodes('/proc/net/tcp6', port))
    if not inodes:
        return None
    wanted = {f'socket:[{inode}]' for inode in inodes}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        fd_dir = f'/proc/{entry}/fd'
        try:
            for fd in os.listdir(fd_dir):
                with contextlib.suppress(OSError):
                    if os.readlink(f'{fd_dir}/{fd}') in wanted:
                        return int(entry)
        except OSError:
            continue
    return None
