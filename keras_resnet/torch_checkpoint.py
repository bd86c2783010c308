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

Time and memory are linear in the file's size, whatever the file holds. A
pickle may reference one object many times, so a file of a few hundred
bytes can describe a tuple with 2**40 unshared items (a tuple nested 40
deep, each level the same object twice). So every object is walked once,
however often it is referenced; tuples used as dict keys or set members,
which Python hashes item by item, may cost at most `_HASH_WORK_PER_BYTE`
steps per byte of pickle in all; error messages print a bounded summary;
tensors are views of their storage (never more elements than the storage
holds), so tensors sharing a storage share its memory; and zip records must
be stored or deflated (torch.save stores them): bzip2 and lzma expand
without a useful bound.
"""

import collections
import dataclasses
import os
import pickle
import reprlib
import struct
import zipfile

import numpy as np

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_VERSION = 1001
_BFLOAT16 = "bfloat16"
# Hashing a tuple visits every item of every tuple inside it, shared ones
# once per reference. A checkpoint's keys are strings (hashed once, cached),
# so this budget, per byte of pickle, is never approached by a real one.
_HASH_WORK_PER_BYTE = 64
_HASH_WORK_BASE = 100_000
# Zip compression methods whose output is at most ~1000x their input.
_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}

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


_SUMMARY = reprlib.Repr()
_SUMMARY.maxlevel, _SUMMARY.maxtuple, _SUMMARY.maxlist, _SUMMARY.maxdict = 3, 6, 6, 4
_SUMMARY.maxstring, _SUMMARY.maxother, _SUMMARY.maxlong = 60, 60, 40


def _summary(value):
    """A bounded repr for messages: a shared structure may be huge unshared."""
    return _SUMMARY.repr(value)


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
        raise _Unreadable(f"a tensor's storage is a {type(storage).__name__}, not a storage")
    if not isinstance(size, (tuple, list)) or not isinstance(stride, (tuple, list)):
        raise _Unreadable(f"a tensor has an invalid layout: size {_summary(size)}, stride {_summary(stride)}")
    shape, strides = tuple(size), tuple(stride)
    numbers = (storage_offset, *shape, *strides)
    if len(shape) != len(strides) or not all(isinstance(n, int) and n >= 0 for n in numbers):
        raise _Unreadable(
            f"a tensor has an invalid layout: offset {_summary(storage_offset)}, "
            f"size {_summary(size)}, stride {_summary(stride)}"
        )
    return _TensorRef(storage, storage_offset, shape, strides)


def _rebuild_parameter(data, requires_grad, backward_hooks, *unused):
    # torch._utils._rebuild_parameter: a Parameter is its tensor here.
    return data


def _ordered_dict(*args, **kwargs):
    # pickle writes an OrderedDict as OrderedDict() and then its items, which
    # the unpickler adds (and whose keys it charges); with arguments the
    # constructor would hash keys outside that account.
    if args or kwargs:
        raise _Unreadable("it builds an OrderedDict from arguments, which pickle never writes")
    return collections.OrderedDict()


# (module, name) of every global a checkpoint may name, and what it becomes.
ALLOWED = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}


class _Unreadable(ValueError):
    """A malformed part of a checkpoint; `load` adds the file's name."""


class _RestrictedUnpickler(pickle._Unpickler):
    """Resolves only `ALLOWED` globals; storages become `_Storage`s.

    Python's own (pure-Python) unpickler, so that the opcodes that hash keys
    can be charged for it: building a tuple records how many items it holds
    counted through shared references, and adding tuples to a dict or set
    spends that much of a budget linear in the pickle's size (see
    `_HASH_WORK_PER_BYTE`).
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, path, size, storage_from_id=None):
        super().__init__(file, encoding="utf-8")
        self._path = path
        self._storage_from_id = storage_from_id
        self._hash_limit = self._hash_budget = _HASH_WORK_BASE + _HASH_WORK_PER_BYTE * size
        # id -> (tuple, its items counted through shared references). The
        # tuple is held so that its id stays its own.
        self._tuple_items = {}

    def _track_tuple(self):
        built = self.stack[-1]
        items = len(built)
        for item in built:
            entry = self._tuple_items.get(id(item))
            if entry is not None:
                items += entry[1]
        self._tuple_items[id(built)] = (built, min(items, self._hash_budget + 1))

    def _charge_hashing(self, keys):
        for key in keys:
            entry = self._tuple_items.get(id(key))
            self._hash_budget -= 1 if entry is None else entry[1]
        if self._hash_budget < 0:
            raise ValueError(
                f"{self._path} uses tuples as dict keys or set members that would take "
                f"more than {self._hash_limit} steps to hash ({_HASH_WORK_PER_BYTE} per "
                "byte of its pickle): tuples that hold the same tuples again and again, "
                "nested, cost a few bytes in the file and exponentially many steps. A "
                "checkpoint of tensors does not need that; refusing to load it."
            )

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
            raise ValueError(f"{self._path} holds an object this reader does not read: {_summary(pid)}")
        return self._storage_from_id(pid[1:])


def _tracking_tuples(opcode):
    build = pickle._Unpickler.dispatch[opcode[0]]

    def load_tuple(self):
        build(self)
        self._track_tuple()

    return load_tuple


def _charging_for_hashes(opcode, keys):
    insert = pickle._Unpickler.dispatch[opcode[0]]

    def load_items(self):
        self._charge_hashing(keys(self.stack))
        insert(self)

    return load_items


for _opcode in (pickle.TUPLE, pickle.TUPLE1, pickle.TUPLE2, pickle.TUPLE3):
    _RestrictedUnpickler.dispatch[_opcode[0]] = _tracking_tuples(_opcode)
# After a MARK the stack holds just the marked items: key, value, key, ...
# for dicts, items for sets. SETITEM's key sits under its value.
for _opcode, _keys in ((pickle.SETITEM, lambda stack: stack[-2:-1]),
                       (pickle.SETITEMS, lambda stack: stack[0::2]),
                       (pickle.DICT, lambda stack: stack[0::2]),
                       (pickle.ADDITEMS, lambda stack: stack),
                       (pickle.FROZENSET, lambda stack: stack)):
    _RestrictedUnpickler.dispatch[_opcode[0]] = _charging_for_hashes(_opcode, _keys)
del _opcode, _keys


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
    except _Unreadable as error:
        raise ValueError(f"{path} is not a readable PyTorch checkpoint: {error}") from None
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


def _new_storage(storage_type, key, numel, path):
    if (not isinstance(storage_type, _StorageType) or not isinstance(key, str)
            or not isinstance(numel, int) or numel < 0):
        raise ValueError(
            f"{path} has a malformed storage record ({_summary(storage_type)}, "
            f"{_summary(key)}, {_summary(numel)})"
        )
    return _Storage(STORAGE_DTYPES[storage_type.name], numel)


def _load_zip(archive, path):
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise ValueError(f"{path} is a zip file but not a PyTorch checkpoint (no <archive>/data.pkl)")
    prefix = pickles[0][: -len("data.pkl")]
    for info in archive.infolist():
        if info.filename.startswith(prefix) and info.compress_type not in _ZIP_METHODS:
            method = {zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma"}.get(
                info.compress_type, f"method {info.compress_type}")
            raise ValueError(
                f"{path}: record {info.filename!r} is compressed with {method}, which can "
                "expand a few kB into GBs; torch.save stores its records uncompressed. "
                "Refusing to read it (re-save it with torch.save, or zip it stored or deflated)."
            )
    byteorder = "little"
    if prefix + "byteorder" in archive.namelist():
        byteorder = archive.read(prefix + "byteorder").decode("ascii", "replace").strip()
    if byteorder not in ("little", "big"):
        raise ValueError(f"{path} has an unknown byte order {_summary(byteorder)}")
    storages = {}

    def storage_from_id(fields):
        # ('storage', storage_type, key, location, numel)
        if len(fields) != 4:
            raise ValueError(f"{path} has a malformed storage record {_summary(fields)}")
        storage_type, key, _location, numel = fields
        storage = _new_storage(storage_type, key, numel, path)
        return storages.setdefault(key, storage)

    with archive.open(pickles[0]) as f:
        size = archive.getinfo(pickles[0]).file_size
        result = _RestrictedUnpickler(f, path, size, storage_from_id).load()
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
    file_size = os.fstat(f.fileno()).st_size

    def next_pickle(storage_from_id=None):
        return _RestrictedUnpickler(f, path, file_size, storage_from_id).load()

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
        raise ValueError(f"{path} has legacy format version {_summary(version)}; only {_LEGACY_VERSION} is read")
    system = next_pickle()
    byteorder = "little" if not isinstance(system, dict) or system.get("little_endian", True) else "big"
    roots = {}

    def storage_from_id(fields):
        # ('storage', storage_type, root_key, location, numel, view_metadata)
        if len(fields) != 5:
            raise ValueError(f"{path} has a malformed storage record {_summary(fields)}")
        storage_type, key, _location, numel, view = fields
        root = roots.setdefault(key, _new_storage(storage_type, key, numel, path))
        if view is None:
            return root
        _view_key, offset, view_numel = view
        if not (isinstance(offset, int) and isinstance(view_numel, int)
                and 0 <= offset and 0 <= view_numel and offset + view_numel <= root.numel):
            raise ValueError(f"{path} has a storage view {_summary(view)} outside its storage")
        return _Storage(root.dtype, view_numel, root=root, offset=offset)

    result = next_pickle(storage_from_id)
    keys = next_pickle()
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)) or set(keys) != set(roots):
        raise ValueError(f"{path}: its list of storages does not match the storages its tensors use")
    end = file_size
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
    """Replaces every `_TensorRef` in `obj` by its numpy array.

    Each storage becomes one native-order array, and each tensor a view of
    it, as torch shares them: memory stays that of the file's storages
    however many tensors view them. Every container is visited once,
    however often the object references it.
    """
    storages, arrays, done = {}, {}, {}

    def storage_array(storage):
        root, offset = (storage.root, storage.offset) if storage.root is not None else (storage, 0)
        if id(root) not in storages:
            data = root.data
            if root.dtype == _BFLOAT16:
                data = (data.astype(np.uint32) << 16).view(np.float32)
            else:
                data = data.astype(data.dtype.newbyteorder("="))
            storages[id(root)] = data
        return storages[id(root)][offset : offset + storage.numel]

    def tensor(ref):
        if id(ref) not in arrays:
            data = storage_array(ref.storage)
            elements = 1
            for n in ref.shape:
                elements *= n
            where = f"a tensor of shape {_summary(ref.shape)} (offset {ref.offset}, strides {_summary(ref.strides)})"
            if elements == 0:
                try:
                    arrays[id(ref)] = np.zeros(ref.shape, data.dtype)
                except (ValueError, OverflowError) as error:
                    raise ValueError(f"{path}: {where} cannot be made: {error}") from None
                return arrays[id(ref)]
            last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.strides))
            if last >= len(data):
                raise ValueError(
                    f"{path}: {where} reaches past its storage of {len(data)} elements"
                )
            if elements > len(data) - ref.offset:
                # Only overlapping strides (e.g. 0) fit more elements into the
                # storage than it holds: a few bytes of file, any size of array.
                raise ValueError(
                    f"{path}: {where} has {elements} elements, more than its "
                    f"storage of {len(data)} element{'s' if len(data) != 1 else ''} "
                    f"holds from offset {ref.offset}: its strides overlap. This reader "
                    "refuses such tensors (torch.save writes them only for expanded "
                    "views, which a checkpoint of weights does not hold)."
                )
            arrays[id(ref)] = np.lib.stride_tricks.as_strided(
                data[ref.offset :], ref.shape, [s * data.itemsize for s in ref.strides]
            )
        return arrays[id(ref)]

    def walk(value):
        if isinstance(value, _TensorRef):
            return tensor(value)
        if isinstance(value, (_Storage, _StorageType)):
            raise ValueError(f"{path} holds a bare storage, not a tensor; this reader reads tensors only")
        if not isinstance(value, (dict, list, tuple, set, frozenset)):
            return value
        if id(value) in done:  # shared (or self-referencing) containers: once
            return done[id(value)]
        done[id(value)] = value
        if isinstance(value, (dict, list)):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in list(items):
                value[key] = walk(item)
            return value
        # Immutable: rebuilt only if an item changed (a tensor inside), so
        # that a set's or a key's items are not hashed again.
        items = [walk(item) for item in value]
        if any(new is not old for new, old in zip(items, value)):
            done[id(value)] = type(value)(items)
        return done[id(value)]

    return walk(obj)
