"""A ZIP archive produced one entry at a time, for sending while it is built.

Python's zipfile writes to any file object; this one keeps only the entry being written.
Each ``add`` returns that entry's bytes (local header, data) and forgets them, and ``finish``
returns the central directory: the whole archive is never in memory, only one entry.

The buffer lets zipfile seek back within the current entry to fill in its local header's
CRC and sizes, so every entry's header carries its real size (no data descriptors): the
gallery counts entries as they arrive by reading those headers (editor/static/editor/batch.js).
"""

from __future__ import annotations

import io
import time
import zipfile


class _EntryBuffer(io.RawIOBase):
    """A write-only file whose bytes before ``base`` were already handed out."""

    def __init__(self) -> None:
        super().__init__()
        self.base = 0
        self.buffer = io.BytesIO()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        return self.buffer.write(data)

    def tell(self) -> int:
        return self.base + self.buffer.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence != io.SEEK_SET or offset < self.base:
            raise OSError("only the entry being written can be revisited")
        return self.base + self.buffer.seek(offset - self.base)

    def take(self) -> bytes:
        """Everything written since the last take; later seeks may not go back into it."""
        self.buffer.seek(0, io.SEEK_END)
        data = self.buffer.getvalue()
        self.base += len(data)
        self.buffer = io.BytesIO()
        return data


class _ZipFile(zipfile.ZipFile):
    def __del__(self) -> None:
        """Nothing: an archive is finished by ``ZipStream.finish`` or not at all. One left
        unfinished (its client went away) would otherwise be finished by the garbage
        collector into a buffer that may be gone already (a traceback in the log)."""


class ZipStream:
    """``add`` entries, then ``finish``; concatenated, the returned bytes are the archive."""

    def __init__(self) -> None:
        self._sink = _EntryBuffer()
        self._zip = _ZipFile(self._sink, "w", compression=zipfile.ZIP_STORED)
        self.size = 0  # bytes handed out so far

    def add(self, name: str, content: bytes, compress: bool = False) -> bytes:
        """One entry's bytes. PNG, JPEG and WebP are compressed already: stored as they are
        (``compress`` deflates, e.g. for a text note)."""
        info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info.external_attr = 0o644 << 16  # rw-r--r-- when unpacked
        self._zip.writestr(info, content)
        return self._take()

    def finish(self) -> bytes:
        """The central directory and end records: the archive's last bytes."""
        self._zip.close()
        return self._take()

    def _take(self) -> bytes:
        data = self._sink.take()
        self.size += len(data)
        return data
