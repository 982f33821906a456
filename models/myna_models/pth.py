"""Read PyTorch's legacy (non-zip) ``.pth`` state dicts without torch, and without running their pickle.

Why this exists: the anti-spoofing weights are published only as ``torch.save`` files from
before the zip format (torch < 1.6), and the reader must not depend on torch. That format
is five things written back to back (torch's ``serialization._legacy_save``):

1. a pickle of the magic number ``0x1950a86a20f9469cfc6c``,
2. a pickle of the format version ``1001``,
3. a pickle of the writer's system info (``little_endian``, ``type_sizes``),
4. the pickle of the object (here an ``OrderedDict`` of tensors); each tensor is a call of
   ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` whose storage is a
   *persistent id* ``("storage", torch.FloatStorage, key, location, numel, view)``,
5. a pickle of the list of storage keys, then, in that order, each storage as its element
   count (int64, little endian) followed by its raw little-endian elements.

A pickle is a program: its GLOBAL/REDUCE opcodes can call any importable function
(``os.system`` included). The unpickler here resolves only the three names a state dict
needs, to harmless local stand-ins, and refuses everything else, so a hostile file fails
with :class:`ModelError` before anything runs. Every size, offset and stride is bounds-checked
against the bytes actually present, and bytes left over at the end are an error too.
"""

from __future__ import annotations

import io
import pickle
import struct
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from myna_models.errors import ModelError

__all__ = ["load_state_dict", "MAGIC_NUMBER", "PROTOCOL_VERSION", "STORAGE_DTYPES"]

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
MAX_TENSOR_DIMS = 8

# torch storage class name -> little-endian numpy dtype of its elements
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


@dataclass(frozen=True)
class _StorageType:
    """Stand-in for ``torch.FloatStorage`` and friends: a name and a dtype, not callable."""
    name: str
    dtype: np.dtype


@dataclass(frozen=True)
class _StorageRef:
    """A persistent id resolved to what is needed later: which raw block, its dtype and length."""
    key: str
    dtype: np.dtype
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    """What ``_rebuild_tensor_v2`` would build: a strided view of a storage (materialised later)."""
    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _int_tuple(v: object, what: str) -> tuple[int, ...]:
    if not isinstance(v, tuple) or len(v) > MAX_TENSOR_DIMS or not all(type(x) is int and x >= 0 for x in v):
        raise ModelError(f"the weight file has a tensor with a malformed {what}")
    return v


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None) -> _TensorRef:
    """Check the arguments torch would get and keep them; build nothing yet."""
    if not isinstance(storage, _StorageRef):
        raise ModelError("the weight file has a tensor that does not point at a storage")
    if type(storage_offset) is not int or storage_offset < 0:
        raise ModelError("the weight file has a tensor with a malformed storage offset")
    size_t, stride_t = _int_tuple(size, "shape"), _int_tuple(stride, "stride")
    if len(size_t) != len(stride_t):
        raise ModelError("the weight file has a tensor whose shape and stride disagree")
    if type(requires_grad) is not bool:
        raise ModelError("the weight file has a tensor with a malformed requires_grad flag")
    if backward_hooks is not None and not (isinstance(backward_hooks, OrderedDict) and not backward_hooks):
        raise ModelError("the weight file has a tensor with backward hooks, which a state dict never has")
    return _TensorRef(storage, storage_offset, size_t, stride_t)


class _StateDictUnpickler(pickle.Unpickler):
    """An unpickler that can build an OrderedDict of tensors and nothing else."""

    def __init__(self, file, allow_tensors: bool) -> None:
        super().__init__(file)
        self._allow_tensors = allow_tensors

    def find_class(self, module: str, name: str):
        if module == "collections" and name == "OrderedDict" and self._allow_tensors:
            return OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2" and self._allow_tensors:
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES and self._allow_tensors:
            return _StorageType(name, STORAGE_DTYPES[name])
        raise ModelError(f"the weight file asks to load {module}.{name}, which a PyTorch state dict "
                         "never needs: refusing to read it")

    def persistent_load(self, pid):
        if not self._allow_tensors:
            raise ModelError("the weight file has a storage reference where none belongs")
        if (not isinstance(pid, tuple) or len(pid) != 6 or pid[0] != "storage"
                or not isinstance(pid[1], _StorageType) or not isinstance(pid[2], str)
                or not isinstance(pid[3], str) or type(pid[4]) is not int or pid[4] < 0):
            raise ModelError("the weight file has a malformed storage reference")
        if pid[5] is not None:
            raise ModelError("the weight file uses storage views, which this reader does not support")
        return _StorageRef(pid[2], pid[1].dtype, pid[4])


def _unpickle(f: io.BytesIO, what: str, allow_tensors: bool = False):
    try:
        return _StateDictUnpickler(f, allow_tensors).load()
    except ModelError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            OverflowError, MemoryError, RecursionError, struct.error, UnicodeDecodeError) as e:
        raise ModelError(f"the weight file's {what} is not a readable pickle ({type(e).__name__})") from None


def load_state_dict(data: bytes, name: str = "weight file") -> dict[str, np.ndarray]:
    """Parse the bytes of a legacy ``torch.save(state_dict)`` file into named float/int arrays.

    ``data`` should be bytes that were already hash-checked: parsing them is then the only
    thing that happens between the check and the use. ``name`` only labels the error messages.
    """
    try:
        return _load(memoryview(data))
    except ModelError as e:
        raise ModelError(f"{name}: {e.message}") from None


def _load(data: memoryview) -> dict[str, np.ndarray]:
    if len(data) >= 4 and bytes(data[:2]) == b"PK":
        raise ModelError("it is a zip-format torch file, not the legacy format this reader takes")
    f = io.BytesIO(data)
    magic = _unpickle(f, "header")
    if type(magic) is not int or magic != MAGIC_NUMBER:
        raise ModelError("it is not a PyTorch legacy file (wrong magic number)")
    version = _unpickle(f, "header")
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise ModelError(f"it has format version {version!r}, expected {PROTOCOL_VERSION}")
    info = _unpickle(f, "header")
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise ModelError("it was not written by a little-endian machine, or its system info is missing")

    obj = _unpickle(f, "state dict", allow_tensors=True)
    if not isinstance(obj, OrderedDict) or not obj:
        raise ModelError("it does not hold a state dict (an ordered mapping of tensors)")
    refs: dict[str, _TensorRef] = {}
    for k, v in obj.items():
        if not isinstance(k, str) or not isinstance(v, _TensorRef):
            raise ModelError("its state dict holds something other than named tensors")
        refs[k] = v

    keys = _unpickle(f, "storage list")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys):
        raise ModelError("its storage list is malformed")
    declared: dict[str, _StorageRef] = {}
    for r in refs.values():
        old = declared.setdefault(r.storage.key, r.storage)
        if old != r.storage:
            raise ModelError(f"its storage {r.storage.key} is declared with two different types or sizes")
    if set(declared) - set(keys):
        raise ModelError("a tensor points at a storage that the file does not contain")

    pos = f.tell()
    blocks: dict[str, np.ndarray] = {}
    for key in keys:
        if pos + 8 > len(data):
            raise ModelError("it is truncated (a storage header is missing)")
        (numel,) = struct.unpack_from("<q", data, pos)
        pos += 8
        ref = declared.get(key)
        if ref is None:
            raise ModelError(f"it holds a storage {key} that no tensor uses")
        if numel != ref.numel:
            raise ModelError(f"its storage {key} has {numel} elements, but the pickle says {ref.numel}")
        nbytes = numel * ref.dtype.itemsize
        if pos + nbytes > len(data):
            raise ModelError("it is truncated (a storage ends past the end of the file)")
        blocks[key] = np.frombuffer(data, dtype=ref.dtype, count=numel, offset=pos)
        pos += nbytes
    if pos != len(data):
        raise ModelError(f"it has {len(data) - pos} unexpected bytes after the last storage")

    return {k: _materialise(k, r, blocks[r.storage.key]) for k, r in refs.items()}


def _materialise(name: str, ref: _TensorRef, block: np.ndarray) -> np.ndarray:
    """The tensor as a fresh, contiguous array in native byte order (no view into the file bytes)."""
    n = int(np.prod(ref.size, dtype=np.int64)) if ref.size else 1
    if n == 0:
        return np.zeros(ref.size, dtype=block.dtype.newbyteorder("="))
    last = ref.offset + sum((s - 1) * st for s, st in zip(ref.size, ref.stride))
    if last >= block.size:
        raise ModelError(f"its tensor {name} reaches past the end of its storage")
    item = block.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(block[ref.offset:], shape=ref.size,
                                           strides=tuple(st * item for st in ref.stride), writeable=False)
    return np.array(view, dtype=block.dtype.newbyteorder("="), order="C", copy=True)
