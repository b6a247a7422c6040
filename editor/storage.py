"""Local media storage whose files appear whole or not at all.

Django's FileSystemStorage writes straight into the final name, so a crash mid-write (a worker
killed, a full disk) leaves a truncated file under a name a row may come to refer to. Here each
file is written under a temporary ``.partial-…`` name in the same folder and then hard-linked to
its final name — atomic, and never over an existing file — before the temporary name goes
(where the file system has no hard links, it is renamed instead). A
crash leaves at most a ``.partial-…`` file that no row refers to, which ``check_storage``
reports and ``--repair`` deletes. Other storages (e.g. S3 through django-storages) upload each
object whole already.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from django.core.files.storage import FileSystemStorage

PARTIAL_MARK = ".partial-"


class AtomicFileSystemStorage(FileSystemStorage):
    def _save(self, name: str, content: Any) -> str:
        wanted = f"{name}{PARTIAL_MARK}{uuid.uuid4().hex[:12]}"
        try:
            partial = super()._save(wanted, content)
        except BaseException:
            # The write failed part-way (a killed process cannot get here: check_storage).
            if os.path.exists(self.path(wanted)):
                os.unlink(self.path(wanted))
            raise
        partial_path = self.path(partial)
        try:
            while True:
                final = self.get_available_name(name)
                try:
                    os.link(partial_path, self.path(final))
                except FileExistsError:
                    continue  # taken since we looked: the next free name
                except OSError:
                    # A file system without hard links (SMB, some FUSE mounts): a rename is
                    # atomic too, only it could replace a file created in the last instant.
                    os.rename(partial_path, self.path(final))
                return final
        finally:
            if os.path.exists(partial_path):
                os.unlink(partial_path)
