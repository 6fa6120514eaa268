"""Read a PyTorch legacy (non-zip) ``.pth`` state dict into NumPy arrays, without PyTorch.

Why not ``torch.load``: PyTorch is a 700 MB dependency we do not otherwise need, and a pickle
is a program: unpickling an untrusted file can run any code. This reader executes no code from
the file. Its unpickler resolves exactly the globals a tensor state dict needs (the tensor
rebuild functions, the storage types and ``OrderedDict``) and refuses every other one.

The legacy format (``torch.save(..., _use_new_zipfile_serialization=False)``) is five pickles
in a row, then raw storage bytes:

1. the magic number ``0x1950a86a20f9469cfc6c``; 2. the protocol version (1001);
3. system info (a dict: byte order, type sizes); 4. the object itself, here an ``OrderedDict``
of tensors, each rebuilt from a persistent id ``("storage", storage_type, key, location,
numel)`` plus offset, size and stride; 5. the list of storage keys in the order their bytes
follow. Each storage is then an 8-byte little-endian element count followed by its elements.
"""

from __future__ import annotations

import collections
import hashlib
import io
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# Storage class name -> NumPy dtype of its elements (little-endian, as torch writes them).
STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class TorchFileError(ValueError):
    """A ``.pth`` file is not a legacy PyTorch state dict we can read safely."""


@dataclass(frozen=True)
class _StorageType:
    """Stands for ``torch.<Name>Storage`` inside the pickle (never a real torch class)."""

    name: str

    @property
    def dtype(self) -> np.dtype:
        return STORAGE_DTYPES[self.name]


@dataclass
class _Storage:
    key: str
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass
class _TensorRef:
    """A tensor whose storage bytes come later in the file."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def materialise(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise TorchFileError(f"storage {self.storage.key} has no data in the file")
        if not self.size:
            return data[self.offset].copy()
        needed = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) + 1
        if any(n == 0 for n in self.size):
            return np.zeros(self.size, dtype=data.dtype)
        if needed > data.size or self.offset < 0 or any(s < 0 for s in self.stride):
            raise TorchFileError(
                f"a tensor of shape {self.size} reaches past its storage {self.storage.key} "
                f"({data.size} elements): the file is damaged"
            )
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], shape=self.size, strides=tuple(s * item for s in self.stride), writeable=False
        )
        return np.array(view)  # a contiguous copy


def _rebuild_tensor(storage, storage_offset, size, stride, *_rest) -> _TensorRef:
    """Stands for ``torch._utils._rebuild_tensor(_v2)``; requires_grad and hooks are ignored."""
    if not isinstance(storage, _Storage):
        raise TorchFileError("a tensor is rebuilt from something that is not a storage")
    return _TensorRef(storage, int(storage_offset), tuple(int(n) for n in size), tuple(int(s) for s in stride))


def _rebuild_parameter(data, *_rest):
    """Stands for ``torch._utils._rebuild_parameter``: a parameter is its tensor."""
    return data


# The only globals the unpickler resolves. Everything else is refused before it is looked up.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, storages: dict[str, _Storage] | None = None):
        super().__init__(file)
        self.storages = storages if storages is not None else {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise TorchFileError(
                f"refuses to load {module}.{name}: only tensors, storages and OrderedDict may "
                f"appear in a weights file (this one carries code or other objects)"
            ) from None

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise TorchFileError(f"unexpected persistent id {pid!r:.80}")
        storage_type, key, _location, numel = pid[1], str(pid[2]), pid[3], int(pid[4])
        if not isinstance(storage_type, _StorageType):
            raise TorchFileError(f"storage {key} has an unknown type {storage_type!r:.80}")
        if key not in self.storages:
            self.storages[key] = _Storage(key, storage_type.dtype, numel)
        return self.storages[key]


def _load_pickle(stream: BinaryIO, storages: dict[str, _Storage] | None = None) -> Any:
    return _SafeUnpickler(stream, storages).load()


def read_legacy_state_dict(path: str | Path, sha256_prefix: str | None = None) -> dict[str, np.ndarray]:
    """Read a legacy-format ``.pth`` state dict; return {key: float/int NumPy array}.

    ``sha256_prefix``: when given, the file's SHA-256 must start with it (PyTorch hub files
    carry the first 8 hex digits in their name). Raises :class:`TorchFileError` naming the file
    for a missing, damaged, wrong or unsafe file. Arrays keep PyTorch's layout (convolutions
    are (out, in, kh, kw)).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TorchFileError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if sha256_prefix is not None:
        digest = hashlib.sha256(raw).hexdigest()
        if not digest.startswith(sha256_prefix):
            raise TorchFileError(
                f"{path}: SHA-256 {digest[:16]}... does not start with {sha256_prefix}: "
                f"the file is damaged or not the expected weights"
            )
    try:
        return _parse(io.BytesIO(raw))
    except TorchFileError as exc:
        raise TorchFileError(f"{path}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, struct.error, ValueError, TypeError, IndexError,
            KeyError, AttributeError, MemoryError) as exc:
        raise TorchFileError(
            f"{path}: is not a readable legacy PyTorch state dict ({type(exc).__name__}: {exc}); "
            f"it may be truncated, or saved in the zip format"
        ) from exc


def _parse(stream: io.BytesIO) -> dict[str, np.ndarray]:
    if stream.getbuffer()[:2] == b"PK":
        raise TorchFileError("is a zip-format PyTorch file; only the legacy format is supported")
    if _load_pickle(stream) != LEGACY_MAGIC:
        raise TorchFileError("does not start with PyTorch's legacy magic number")
    protocol = _load_pickle(stream)
    if protocol != LEGACY_PROTOCOL:
        raise TorchFileError(f"has protocol version {protocol!r}, expected {LEGACY_PROTOCOL}")
    sys_info = _load_pickle(stream)
    if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
        raise TorchFileError("was written on a big-endian machine; not supported")
    storages: dict[str, _Storage] = {}
    state = _load_pickle(stream, storages)
    keys = _load_pickle(stream)
    if not isinstance(state, dict) or not isinstance(keys, list):
        raise TorchFileError("does not hold a state dict (a mapping of names to tensors)")
    total = len(stream.getbuffer())
    for key in keys:
        storage = storages.get(str(key))
        if storage is None:
            raise TorchFileError(f"lists storage {key!r} that no tensor uses")
        (numel,) = struct.unpack("<q", stream.read(8))
        nbytes = numel * storage.dtype.itemsize
        if numel < 0 or stream.tell() + nbytes > total:
            raise TorchFileError(f"storage {key} claims {numel} elements past the end of the file")
        storage.data = np.frombuffer(stream.read(nbytes), dtype=storage.dtype)
    out: dict[str, np.ndarray] = {}
    for name, value in state.items():
        if isinstance(value, _TensorRef):
            out[str(name)] = value.materialise()
        elif isinstance(value, (int, float)):  # e.g. num_batches_tracked stored as a number
            out[str(name)] = np.asarray(value)
        else:
            raise TorchFileError(f"entry {name!r} is a {type(value).__name__}, not a tensor")
    return out
