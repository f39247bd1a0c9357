"""vhdx_check: the vhdx-check forensic MS-VHDX validator and its virtual-disk reader.

- ``check(path, ...)`` returns the document ``vhdx-check check --format json`` writes.
- ``rules()`` lists the rule catalogue (``vhdx-check rules --format json``).
- ``VirtualDisk(path, ...)`` is a read-only binary file object over the disk a guest
  reads: through its parents for a differencing image, with a pending log replayed (the
  default view), refused with ``Error`` when it cannot be read exactly.

Checks and reads run in Rust with the GIL released; ``VirtualDisk.pread`` is positioned
and thread-safe, and a read that fails raises ``Error`` (never returns zeros).
"""

import io
import json
import os
import threading

from ._native import Disk as _Disk
from ._native import Error, check_json as _check_json, rules_json as _rules_json

__all__ = ["Error", "VirtualDisk", "check", "rules"]

# check --max-per-rule accepts 0..=100000.
_MAX_PER_RULE_LIMIT = 100_000
# Extents fetched from the map walk at a time.
_MAP_BATCH = 4096


def _paths(parents):
    if parents is None:
        return []
    if isinstance(parents, (str, bytes, os.PathLike)):
        parents = [parents]
    return [os.fsdecode(p) if isinstance(p, bytes) else os.fspath(p) for p in parents]


def _path(path):
    return os.fsdecode(path) if isinstance(path, bytes) else os.fspath(path)


def _document(answer):
    text, errors = answer
    if errors:
        raise Error("; ".join(errors))
    return json.loads(text)


def check(path, parents=None, find_parents=False, policy=None, max_per_rule=100):
    """Checks one image (with ``parents`` or ``find_parents``: the image and each parent).

    Returns the document ``vhdx-check check --format json`` writes for the same arguments
    (``images[0]["verdict"]`` is ``"accept"`` or ``"reject"``). Raises ``Error`` with the
    reason the command line prints when an image cannot be checked (missing, unreadable,
    changed while it was read) or the policy file is bad. A file that is not VHDX is
    checked: it is rejected with a finding, as on the command line.
    """
    if isinstance(max_per_rule, bool) or not isinstance(max_per_rule, int):
        raise TypeError("max_per_rule is an int")
    if not 0 <= max_per_rule <= _MAX_PER_RULE_LIMIT:
        raise ValueError(f"max_per_rule is 0..={_MAX_PER_RULE_LIMIT}, not {max_per_rule}")
    policy = None if policy is None else _path(policy)
    return _document(
        _check_json(_path(path), _paths(parents), bool(find_parents), policy, max_per_rule)
    )


def rules():
    """The rule catalogue: one dict per rule (id, severity, title, spec, ...)."""
    return json.loads(_rules_json())["rules"]


class VirtualDisk(io.RawIOBase):
    """The virtual disk of ``path`` as a guest reads it, as a read-only binary file.

    ``parents``: the parent files of a differencing image, nearest first;
    ``find_parents``: find them through the parent locator (below the image's directory).
    ``view``: ``"replayed"`` (a pending log applied, as Hyper-V and QEMU read the disk) or
    ``"raw"`` (the file as stored). Refused with ``Error`` — the reason ``vhdx-check
    export`` prints — when the disk cannot be read exactly.

    ``read``/``readinto``/``seek``/``tell`` share one position; ``pread(n, offset)`` does
    not touch it and may be called from many threads at once.
    """

    def __init__(self, path, parents=None, find_parents=False, view="replayed"):
        super().__init__()
        if view not in ("replayed", "raw"):
            raise ValueError(f'view is "replayed" or "raw", not {view!r}')
        self.name = _path(path)
        self.view = view
        self._disk = _Disk(self.name, _paths(parents), bool(find_parents), view)
        self._size = self._disk.size
        self._pos = 0
        self._lock = threading.Lock()
        self._report = None

    def __repr__(self):
        state = "closed" if self.closed else f"{self._size} bytes"
        return f"<vhdx_check.VirtualDisk {self.name!r} view={self.view!r} {state}>"

    def _check_open(self):
        if self.closed:
            raise ValueError("I/O operation on closed file")

    @property
    def size(self):
        """VirtualDiskSize in bytes."""
        return self._size

    @property
    def logical_sector_size(self):
        """LogicalSectorSize in bytes (512 or 4096)."""
        return self._disk.logical_sector_size

    def readable(self):
        self._check_open()
        return True

    def seekable(self):
        self._check_open()
        return True

    def writable(self):
        self._check_open()
        return False

    def tell(self):
        self._check_open()
        return self._pos

    def seek(self, offset, whence=os.SEEK_SET):
        self._check_open()
        offset = offset.__index__()
        with self._lock:
            if whence == os.SEEK_SET:
                pos = offset
            elif whence == os.SEEK_CUR:
                pos = self._pos + offset
            elif whence == os.SEEK_END:
                pos = self._size + offset
            else:
                raise ValueError(f"invalid whence ({whence!r}, should be 0, 1 or 2)")
            if pos < 0:
                raise OSError(22, "negative seek position")
            self._pos = pos
            return pos

    def pread(self, n, offset):
        """Up to ``n`` bytes at virtual ``offset`` (fewer only at the end of the disk),
        without moving the position; thread-safe."""
        self._check_open()
        n, offset = n.__index__(), offset.__index__()
        if n < 0 or offset < 0:
            raise ValueError("pread takes a non-negative size and offset")
        n = max(0, min(n, self._size - offset))
        if n == 0:
            return b""
        return self._disk.pread(n, offset)

    def _take(self, n):
        """Reads up to ``n`` bytes at the position and moves past them."""
        with self._lock:
            pos = self._pos
            n = max(0, min(n, self._size - pos))
            self._pos = pos + n
        if n == 0:
            return b""
        try:
            return self._disk.pread(n, pos)
        except BaseException:
            # Nothing was read: the position stays, unless another reader moved it.
            with self._lock:
                if self._pos == pos + n:
                    self._pos = pos
            raise

    def read(self, size=-1):
        self._check_open()
        if size is None or size < 0:
            return self.readall()
        return self._take(size.__index__())

    def readall(self):
        self._check_open()
        return self._take(max(0, self._size - self._pos))

    def readinto(self, b):
        self._check_open()
        with memoryview(b) as view, view.cast("B") as out:
            data = self._take(len(out))
            out[: len(data)] = data
            return len(data)

    def close(self):
        if not self.closed:
            self._disk.close()
        super().close()

    def map(self):
        """Yields the allocation extents in order, as ``vhdx-check map --format json``
        lists them: dicts with offset, length, state (data, partial, zero, unallocated),
        source (the path of the chain member read) and file_offset (data and partial)."""
        self._check_open()
        members = self._disk.members()
        start = 0
        while True:
            batch = self._disk.extents(start, _MAP_BATCH)
            if not batch:
                return
            for offset, length, state, member, file_offset in batch:
                extent = {"offset": offset, "length": length, "state": state}
                if member is None or member >= len(members):
                    extent["source"] = None
                else:
                    path, path_bytes = members[member]
                    extent["source"] = path
                    if path_bytes is not None:
                        extent["source_bytes"] = path_bytes
                extent["file_offset"] = file_offset
                yield extent
            start = batch[-1][0] + batch[-1][1]

    @property
    def report(self):
        """The check of the chain read: the document ``vhdx-check check --format json``
        writes for the image with the same parents (computed once, on first use)."""
        if self._report is None:
            self._check_open()
            self._report = _document(self._disk.report())
        return self._report
