"""Opening a submitted file without trusting it: no symlinks, only regular files, a size limit, and
a check that the file read is still the file at its path (not modified or replaced meanwhile)."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAX_FILE_BYTES = 256 * 1024 * 1024  # above a 1,000,000-row CSV (≈ 60–120 MB), below anything sane to hold
_CHUNK = 1024 * 1024


class NotAFile(Exception):
    """An inbox entry that is never read and never moved (a symlink, a FIFO, a device …).

    `identity` stands in for the content hash: the same entry is recorded once, not on every scan.
    """

    def __init__(self, reason: str, identity: str, size: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.identity = identity
        self.size = size


def _identity(kind: str, *parts: object) -> str:
    return hashlib.sha256(
        "\0".join([kind, *(str(p) for p in parts)]).encode("utf-8", "surrogateescape")
    ).hexdigest()


def check_entry(path: Path) -> None:
    """Raise NotAFile unless `path` itself (not what it points to) is a regular file."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(path)
        raise NotAFile(
            "报送内容是符号链接（快捷方式），不予读取：请把文件本身（而不是指向其他位置的链接）放入本单位目录后重新报送",
            _identity("symlink", target, st.st_ino),
            st.st_size,
        )
    if not stat.S_ISREG(st.st_mode):
        kind = "目录" if stat.S_ISDIR(st.st_mode) else "特殊文件（管道、设备或套接字）"
        raise NotAFile(
            f"报送内容是{kind}，不是普通文件，不予读取：请放入 .xlsx 或 .csv 文件后重新报送",
            _identity("special", st.st_mode, st.st_dev, st.st_ino),
            0,
        )


@dataclass
class SubmittedFile:
    """A submitted file opened once; every read (hash, encoding, rows) goes through this descriptor."""

    path: Path
    f: BinaryIO
    st: os.stat_result
    digest: str

    @property
    def size(self) -> int:
        return self.st.st_size

    @classmethod
    def open(cls, path: Path) -> SubmittedFile:
        """Open without following a symlink (even one swapped in after the scan) and hash the content.

        Raises NotAFile for anything but a regular file; OSError when it vanished.
        """
        check_entry(path)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # it became a symlink after the scan looked
                check_entry(path)
            raise
        f = os.fdopen(fd, "rb")
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                check_entry(path)
            h = hashlib.sha256()
            while chunk := f.read(_CHUNK):
                h.update(chunk)
            return cls(Path(path), f, st, h.hexdigest())
        except BaseException:
            f.close()
            raise

    def changed(self) -> str | None:
        """Why the file read is not (any more) the file at its path, or None when it still is."""
        try:
            cur = os.lstat(self.path)
        except FileNotFoundError:
            return "文件在读取过程中被移走或删除，本次未入库：请重新报送"
        if (cur.st_dev, cur.st_ino) != (self.st.st_dev, self.st.st_ino):
            return "文件在读取过程中被同名文件替换，本次未入库：替换后的文件将在下次扫描时处理"
        now = os.fstat(self.f.fileno())
        if (now.st_size, now.st_mtime_ns, now.st_ctime_ns) != (
            self.st.st_size,
            self.st.st_mtime_ns,
            self.st.st_ctime_ns,
        ):
            return "文件在读取过程中被修改，本次未入库：请在文件复制完成、不再改动后重新报送（修改后的文件将在下次扫描时处理）"
        return None

    def still_at_path(self) -> bool:
        try:
            cur = os.lstat(self.path)
        except FileNotFoundError:
            return False
        return (cur.st_dev, cur.st_ino) == (self.st.st_dev, self.st.st_ino)

    def close(self) -> None:
        self.f.close()

    def __enter__(self) -> SubmittedFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
