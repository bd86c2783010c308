"""Reads PyTorch checkpoints into numpy arrays, without torch and without
running any code the file holds.

    checkpoint = keras_resnet.torch_checkpoint.load("resnet20-12fca82f.th")
    checkpoint["state_dict"]["module.conv1.weight"].shape   # (16, 3, 3, 3)

`torch.save` writes a pickle, and a pickle is a small program: it may name
any importable function and call it (`os.system` included), which is why
`torch.load` on an untrusted file is unsafe. Here the unpickler resolves
only the globals a checkpoint of tensors needs, listed in `ALLOWED`
(`collections.OrderedDict`, torch's tensor-rebuild functions and storage
types, which map to our own stand-ins here, never to torch), and refuses
every other global with a `ValueError` that names it, before it is imported
or called.

Both of torch's formats are read:

- zip (`torch.save` since torch 1.6): `<archive>/data.pkl` is the pickle; each
  storage's raw bytes are a record `<archive>/data/<key>`, and
  `<archive>/byteorder` says their byte order (little if absent).
- legacy (before 1.6, or `_use_new_zipfile_serialization=False`; e.g. the
  akamaster CIFAR-10 `.th` files): one stream of pickles (a magic number,
  the format version, system info with the byte order, the object, the list
  of storage keys), then each storage in that order as an int64 element
  count followed by its raw bytes.

Tensors come back as numpy arrays in the file's dtype (native byte order),
except bfloat16, which numpy lacks: it comes back as float32, exactly. The
rest of the object (dicts, lists, numbers, strings) comes back as pickled.
The very old tar format (torch < 0.1.10) is not read.
"""

import collections
import dataclasses
import os
import pickle
import struct
import zipfile

import numpy as np

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_VERSION = 1001
_BFLOAT16 = "bfloat16"

# torch's storage types (the globals `torch.<name>`) and their element types.
STORAGE_DTYPES = {
    "FloatStorage": "f4",
    "DoubleStorage": "f8",
    "HalfStorage": "f2",
    "BFloat16Storage": _BFLOAT16,
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
    "ComplexFloatStorage": "c8",
    "ComplexDoubleStorage": "c16",
}


@dataclasses.dataclass(frozen=True)
class _StorageType:
    """Stands in for `torch.FloatStorage` etc.: only names an element type."""

    name: str


class _Storage:
    """One storage: its element type and size, its bytes filled in later.

    A legacy file may hold views of a storage (`root` and `offset` set).
    """

    def __init__(self, dtype, numel, root=None, offset=0):
        self.dtype, self.numel, self.root, self.offset = dtype, numel, root, offset
        self.data = None  # a 1-d numpy array, once read

    def array(self):
        if self.root is not None:
            return self.root.array()[self.offset : self.offset + self.numel]
        return self.data


@dataclasses.dataclass(eq=False)
class _TensorRef:
    """A tensor to build once its storage's bytes are read."""

    storage: _Storage
    offset: int
    shape: tuple
    strides: tuple


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    # torch._utils._rebuild_tensor(storage, offset, size, stride) and
    # _rebuild_tensor_v2(..., requires_grad, backward_hooks, metadata=None);
    # autograd flags and (always empty) hooks do not matter for arrays.
    if not isinstance(storage, _Storage):
        raise ValueError(f"a tensor's storage is a {type(storage).__name__}, not a storage")
    shape, strides = tuple(size), tuple(stride)
    numbers = (storage_offset, *shape, *strides)
    if len(shape) != len(strides) or not all(isinstance(n, int) and n >= 0 for n in numbers):
        raise ValueError(
            f"a tensor has an invalid layout: offset {storage_offset!r}, "
            f"size {size!r}, stride {stride!r}"
        )
    return _TensorRef(storage, storage_offset, shape, strides)


def _rebuild_parameter(data, requires_grad, backward_hooks, *unused):
    # torch._utils._rebuild_parameter: a Parameter is its tensor here.
    return data


# (module, name) of every global a checkpoint may name, and what it becomes.
ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only `ALLOWED` globals; storages become `_Storage`s."""

    def __init__(self, file, path, storage_from_id=None):
        super().__init__(file, encoding="utf-8")
        self._path = path
        self._storage_from_id = storage_from_id

    def find_class(self, module, name):
        allowed = ALLOWED.get((module, name))
        if allowed is None:
            raise ValueError(
                f"{self._path} names the global {module}.{name}, which a "
                "checkpoint of tensors does not need; refusing to load it "
                "(nothing in the file was run). Allowed globals: "
                f"collections.OrderedDict, torch._utils._rebuild_tensor, "
                f"_rebuild_tensor_v2, _rebuild_parameter and torch's storage "
                f"types ({', '.join(STORAGE_DTYPES)})."
            )
        return allowed

    def persistent_load(self, pid):
        if self._storage_from_id is None or not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise ValueError(f"{self._path} holds an object this reader does not read: {pid!r:.200}")
        return self._storage_from_id(pid[1:])


def load(path):
    """Reads a checkpoint that `torch.save` wrote (zip or legacy format).

    Args:
        path: the checkpoint file (.pt, .pth, .th, .bin, ...).

    Returns:
        The saved object with every tensor as a numpy array, e.g. a dict
        from state-dict keys to arrays.

    Raises:
        ValueError: naming the file, if it names a global outside `ALLOWED`
            (nothing in it is run), or is not a PyTorch checkpoint, or is
            truncated or inconsistent.
    """
    path = os.fspath(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return _load_zip(archive, path)
        with open(path, "rb") as f:
            return _load_legacy(f, path)
    except ValueError:
        raise
    except (pickle.UnpicklingError, EOFError, TypeError, KeyError, AttributeError,
            IndexError, struct.error, zipfile.BadZipFile, MemoryError, RecursionError) as error:
        raise ValueError(f"{path} is not a readable PyTorch checkpoint: {error!r:.300}") from error


def _element(dtype_code, byteorder):
    """(numpy dtype of the stored bytes, element size) for a storage type."""
    if dtype_code == _BFLOAT16:
        dtype = np.dtype("u2")
    else:
        dtype = np.dtype(dtype_code)
    return dtype.newbyteorder("<" if byteorder == "little" else ">"), dtype.itemsize


def _new_storage(storage_type, numel, path):
    if not isinstance(storage_type, _StorageType) or not isinstance(numel, int) or numel < 0:
        raise ValueError(f"{path} has a malformed storage record ({storage_type!r}, {numel!r})")
    return _Storage(STORAGE_DTYPES[storage_type.name], numel)


def _load_zip(archive, path):
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise ValueError(f"{path} is a zip file but not a PyTorch checkpoint (no <archive>/data.pkl)")
    prefix = pickles[0][: -len("data.pkl")]
    byteorder = "little"
    if prefix + "byteorder" in archive.namelist():
        byteorder = archive.read(prefix + "byteorder").decode("ascii", "replace").strip()
    if byteorder not in ("little", "big"):
        raise ValueError(f"{path} has an unknown byte order {byteorder!r}")
    storages = {}

    def storage_from_id(fields):
        # ('storage', storage_type, key, location, numel)
        if len(fields) != 4:
            raise ValueError(f"{path} has a malformed storage record {fields!r:.200}")
        storage_type, key, _location, numel = fields
        if key not in storages:
            storages[key] = _new_storage(storage_type, numel, path)
        return storages[key]

    with archive.open(pickles[0]) as f:
        result = _RestrictedUnpickler(f, path, storage_from_id).load()
    for key, storage in storages.items():
        name = f"{prefix}data/{key}"
        dtype, size = _element(storage.dtype, byteorder)
        try:
            info = archive.getinfo(name)
        except KeyError:
            raise ValueError(f"{path} lacks the storage record {name!r}") from None
        if info.file_size != storage.numel * size:
            raise ValueError(
                f"{path}: storage record {name!r} has {info.file_size} bytes, "
                f"not the {storage.numel} x {size} its tensors need"
            )
        storage.data = np.frombuffer(archive.read(name), dtype)
    return _materialise(result, path)


def _load_legacy(f, path):
    def next_pickle():
        return _RestrictedUnpickler(f, path).load()

    try:
        magic = next_pickle()
    except (pickle.UnpicklingError, EOFError, TypeError, KeyError, IndexError) as error:
        raise ValueError(
            f"{path} is neither a zip nor a legacy PyTorch checkpoint (it does "
            f"not start with a pickle: {error!r:.200})"
        ) from error
    if magic != _LEGACY_MAGIC:
        raise ValueError(f"{path} is not a PyTorch checkpoint (its first pickle is not torch's magic number)")
    version = next_pickle()
    if version != _LEGACY_VERSION:
        raise ValueError(f"{path} has legacy format version {version!r}; only {_LEGACY_VERSION} is read")
    system = next_pickle()
    byteorder = "little" if not isinstance(system, dict) or system.get("little_endian", True) else "big"
    roots = {}

    def storage_from_id(fields):
        # ('storage', storage_type, root_key, location, numel, view_metadata)
        if len(fields) != 5:
            raise ValueError(f"{path} has a malformed storage record {fields!r:.200}")
        storage_type, key, _location, numel, view = fields
        if key not in roots:
            roots[key] = _new_storage(storage_type, numel, path)
        if view is None:
            return roots[key]
        _view_key, offset, view_numel = view
        root = roots[key]
        if not (isinstance(offset, int) and isinstance(view_numel, int)
                and 0 <= offset and 0 <= view_numel and offset + view_numel <= root.numel):
            raise ValueError(f"{path} has a storage view {view!r} outside its storage")
        return _Storage(root.dtype, view_numel, root=root, offset=offset)

    result = _RestrictedUnpickler(f, path, storage_from_id).load()
    keys = next_pickle()
    if not isinstance(keys, list) or set(keys) != set(roots):
        raise ValueError(f"{path}: its list of storages does not match the storages its tensors use")
    end = os.fstat(f.fileno()).st_size
    for key in keys:
        storage = roots[key]
        dtype, size = _element(storage.dtype, byteorder)
        (numel,) = struct.unpack("<q" if byteorder == "little" else ">q", f.read(8))
        if numel != storage.numel or f.tell() + numel * size > end:
            raise ValueError(
                f"{path}: storage {key!r} is truncated or has {numel} elements "
                f"where its tensors say {storage.numel}"
            )
        storage.data = np.frombuffer(f.read(numel * size), dtype)
    return _materialise(result, path)


def _materialise(obj, path):
    """Replaces every `_TensorRef` in `obj` by its numpy array."""
    arrays, seen = {}, set()

    def tensor(ref):
        if id(ref) not in arrays:
            data = ref.storage.array()
            if any(n == 0 for n in ref.shape):
                array = np.zeros(ref.shape, data.dtype)
            else:
                last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.strides))
                if last >= len(data):
                    raise ValueError(
                        f"{path}: a tensor of shape {ref.shape} (offset "
                        f"{ref.offset}, strides {ref.strides}) reaches past its "
                        f"storage of {len(data)} elements"
                    )
                array = np.lib.stride_tricks.as_strided(
                    data[ref.offset :], ref.shape, [s * data.itemsize for s in ref.strides]
                )
            if ref.storage.dtype == _BFLOAT16:
                array = (array.astype(np.uint32) << 16).view(np.float32)
            arrays[id(ref)] = np.array(array, dtype=array.dtype.newbyteorder("="))
        return arrays[id(ref)]

    def walk(value):
        if isinstance(value, _TensorRef):
            return tensor(value)
        if isinstance(value, (_Storage, _StorageType)):
            raise ValueError(f"{path} holds a bare storage, not a tensor; this reader reads tensors only")
        if isinstance(value, (dict, list)):
            if id(value) not in seen:  # shared or self-referencing containers
                seen.add(id(value))
                items = value.items() if isinstance(value, dict) else enumerate(value)
                for key, item in list(items):
                    value[key] = walk(item)
            return value
        if isinstance(value, (tuple, set, frozenset)):
            return type(value)(walk(item) for item in value)
        return value

    return walk(obj)
