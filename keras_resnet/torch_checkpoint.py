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
however often it is referenced; error messages print a bounded summary;
tensors are views of their storage (never more elements than the storage
holds), so tensors sharing a storage share its memory; and zip records must
be stored or deflated (torch.save stores them): bzip2 and lzma expand
without a useful bound.

Dict keys and set members are charged, from one budget of
`_HASH_WORK_PER_BYTE` steps per byte of pickle, for two costs:

- hashing: a tuple is hashed item by item, shared items once per
  reference, and an int digit by digit (neither caches its hash);
- probing: a key whose hash equals that of k keys already in its dict or
  set is compared with each of them, so n keys with one hash cost n**2 / 2
  comparisons. Python's hashes of numbers and tuples are not randomised
  (an int hashes to itself modulo 2**61 - 1, so `(2**61 - 1) * i` all hash
  to 0): 20,000 such int keys, 279 kB, took 10-23 s before they were
  charged. str and bytes hashes are randomised per process, so a real
  checkpoint's keys share no hash.

Memo indices (the pickle's own references to earlier objects) must be
below 2**61 - 1, where ints have distinct hashes: picklers number them from
0.

A file cut short (an interrupted download or copy) is called truncated,
with its size and, where the file says it, the size it should have.
"""

import collections
import dataclasses
import os
import pickle
import reprlib
import struct
import sys
import zipfile

import numpy as np

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_VERSION = 1001
# How torch.save writes the magic number (pickle protocol 2, its default).
_LEGACY_MAGIC_PICKLE = pickle.dumps(_LEGACY_MAGIC, protocol=2)
_BFLOAT16 = "bfloat16"
# Hashing a tuple visits every item of every tuple inside it, shared ones
# once per reference; a key is compared with every key of its dict or set
# that has its hash. A checkpoint's keys are strings (hashed once, cached,
# randomised), so this budget, per byte of pickle, is never approached by
# a real one.
_HASH_WORK_PER_BYTE = 64
_HASH_WORK_BASE = 100_000
# Ints in [0, modulus) hash to themselves; larger ones wrap around.
_HASH_MODULUS = sys.hash_info.modulus
_ZIP_SIGNATURE = b"PK\x03\x04"
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


class _Memo(dict):
    """The unpickler's memo, refusing indices whose ints share hashes."""

    def __setitem__(self, index, value):
        if not 0 <= index < _HASH_MODULUS:
            raise _Unreadable(
                f"it stores an object under memo index {_summary(index)}; picklers number "
                f"them from 0, and indices from {_HASH_MODULUS} on share hashes with smaller "
                "ones (each costing a search through the others)"
            )
        super().__setitem__(index, value)


class _RestrictedUnpickler(pickle._Unpickler):
    """Resolves only `ALLOWED` globals; storages become `_Storage`s.

    Python's own (pure-Python) unpickler, so that the opcodes that add keys
    to a dict or set (and BUILD, which adds an instance's attributes) can be
    charged for it, from a budget linear in the pickle's size (see
    `_HASH_WORK_PER_BYTE`): each key costs the steps to hash it (building a
    tuple records how many steps that is, counted through shared
    references), times one more than the number of keys of its dict or set
    that have its hash (each of which it is compared with). The charge is
    made before the keys are inserted, and a key is hashed only once its
    hashing has been paid for.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, path, size, storage_from_id=None):
        super().__init__(file, encoding="utf-8")
        self.memo = _Memo()
        # Whether a read came up short: the file ended inside this pickle
        # (whatever error that causes next, it is a truncated file).
        self.ran_out = False
        read, readline = self._file_read, self._file_readline

        def read_n(n):
            data = read(n)
            if len(data) < n:
                self.ran_out = True
            return data

        def read_line():
            line = readline()
            if not line.endswith(b"\n"):
                self.ran_out = True
            return line

        self._file_read, self._file_readline = read_n, read_line
        self._path = path
        self._storage_from_id = storage_from_id
        self._hash_limit = self._hash_budget = _HASH_WORK_BASE + _HASH_WORK_PER_BYTE * size
        # id -> (tuple, the steps to hash it). The tuple is held so that its
        # id stays its own.
        self._tuple_work = {}
        # id(dict or set) -> (it, {hash: how many of its keys have it}).
        self._hashes_in = {}

    def _hash_work(self, key):
        """Steps to hash `key` (or to compare it with an equal-hash key)."""
        if type(key) is int:
            return 1 + key.bit_length() // 64
        entry = self._tuple_work.get(id(key))
        return 1 if entry is None else entry[1]

    def _track_tuple(self):
        built = self.stack[-1]
        work = 1 + sum(self._hash_work(item) for item in built)
        self._tuple_work[id(built)] = (built, min(work, self._hash_budget + 1))

    def _spend(self, work, why):
        self._hash_budget -= work
        if self._hash_budget < 0:
            raise ValueError(
                f"{self._path} has dict keys or set members that would take more than "
                f"{self._hash_limit} steps to insert ({_HASH_WORK_PER_BYTE} per byte of its "
                f"pickle): {why} A checkpoint of tensors does not need that; refusing to "
                "load it."
            )

    def _charge_keys(self, container, keys):
        """Pays for inserting `keys` into `container` (None: a new one);
        returns the container's hash counts."""
        entry = self._hashes_in.get(id(container)) if container is not None else None
        counts = {} if entry is None else entry[1]
        for key in keys:
            work = self._hash_work(key)
            self._spend(work, _HASHING)
            key_hash = hash(key)
            same = counts.get(key_hash, 0)
            if same:
                self._spend(work * same, _COLLIDING.format(same + 1, key_hash))
            counts[key_hash] = same + 1
        if container is not None and entry is None:
            self._hashes_in[id(container)] = (container, counts)
        return counts

    def _track_container(self, container, counts):
        self._hashes_in[id(container)] = (container, counts)

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


_HASHING = (
    "keys that are slow to hash, used again and again: tuples that hold the same "
    "tuples again and again, nested, cost a few bytes in the file and exponentially "
    "many steps to hash, and an int is hashed digit by digit each time."
)
_COLLIDING = (
    "{} keys of one dict or set share the hash {} (Python does not randomise the "
    "hashes of numbers and tuples, e.g. every multiple of 2**61 - 1 hashes to 0), "
    "and each is compared with all the others: n such keys cost n**2 / 2 steps."
)


def _charging_for_keys(opcode, container, keys):
    """Wraps `opcode`'s handler: its keys are paid for before it runs.

    `container(stack)` is the dict or set they go into, None for a new one
    (whose hash counts are kept for the items added to it later); after a
    MARK the stack holds just the marked items.
    """
    insert = pickle._Unpickler.dispatch[opcode[0]]

    def load_items(self):
        into = container(self.stack, self.metastack)
        counts = self._charge_keys(into, keys(self.stack))
        insert(self)
        if into is None and opcode != pickle.FROZENSET:
            self._track_container(self.stack[-1], counts)

    return load_items


def _load_build(self):
    # BUILD sets an instance's attributes from a state dict (torch's state
    # dicts carry `_metadata` so): its keys go into the instance's __dict__.
    state, inst = self.stack[-1], self.stack[-2]
    states = state if isinstance(state, tuple) and len(state) == 2 else (state,)
    for part in states:
        if isinstance(part, dict):
            self._charge_keys(getattr(inst, "__dict__", None), list(part))
    pickle._Unpickler.load_build(self)


def _marked_container(stack, metastack):
    # ADDITEMS / SETITEMS: the set or dict sits just under the MARK.
    return metastack[-1][-1] if metastack and metastack[-1] else None


for _opcode in (pickle.TUPLE, pickle.TUPLE1, pickle.TUPLE2, pickle.TUPLE3):
    _RestrictedUnpickler.dispatch[_opcode[0]] = _tracking_tuples(_opcode)
# SETITEM's key sits under its value, its dict under that.
for _opcode, _container, _keys in (
        (pickle.SETITEM, lambda stack, meta: stack[-3] if len(stack) > 2 else None,
         lambda stack: stack[-2:-1]),
        (pickle.SETITEMS, _marked_container, lambda stack: stack[0::2]),
        (pickle.DICT, lambda stack, meta: None, lambda stack: stack[0::2]),
        (pickle.ADDITEMS, _marked_container, lambda stack: stack),
        (pickle.FROZENSET, lambda stack, meta: None, lambda stack: stack)):
    _RestrictedUnpickler.dispatch[_opcode[0]] = _charging_for_keys(_opcode, _container, _keys)
_RestrictedUnpickler.dispatch[pickle.BUILD[0]] = _load_build
del _opcode, _container, _keys


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
            truncated (saying so, with its size and, where the file says it,
            the size it should have) or inconsistent.
    """
    path = os.fspath(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return _load_zip(archive, path)
        with open(path, "rb") as f:
            _check_not_a_cut_zip(f, path)
            return _load_legacy(f, path)
    except _Unreadable as error:
        raise ValueError(f"{path} is not a readable PyTorch checkpoint: {error}") from None
    except ValueError:
        raise
    except (pickle.UnpicklingError, EOFError, TypeError, KeyError, AttributeError,
            IndexError, struct.error, zipfile.BadZipFile, MemoryError, RecursionError) as error:
        raise ValueError(f"{path} is not a readable PyTorch checkpoint: {error!r:.300}") from error


def _check_not_a_cut_zip(f, path):
    """Refuses an empty file, and a zip whose end is missing, as truncated."""
    size = os.fstat(f.fileno()).st_size
    if size == 0:
        raise ValueError(
            f"{path} is empty (0 bytes): truncated, e.g. by a download or copy that wrote "
            "nothing. Fetch or copy it again."
        )
    start = f.read(len(_ZIP_SIGNATURE))
    f.seek(0)
    if _ZIP_SIGNATURE.startswith(start):
        # A zip's index (its central directory) is its last part: a zip cut
        # short has none, and is_zipfile() said no.
        raise ValueError(
            f"{path} is truncated: it starts as a zip file (PyTorch's format since 1.6) "
            f"but ends after {size} byte{'s' if size != 1 else ''}, without the index a zip "
            "ends with. Fetch or copy it again."
        )


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

    def next_pickle(what, storage_from_id=None):
        unpickler = _RestrictedUnpickler(f, path, file_size, storage_from_id)
        try:
            return unpickler.load()
        except Exception as error:
            if unpickler.ran_out:
                raise ValueError(
                    f"{path} is truncated: its {file_size} bytes end inside its pickled "
                    f"{what}, before the tensors' data. Fetch or copy it again."
                ) from error
            raise

    head = f.read(len(_LEGACY_MAGIC_PICKLE))
    f.seek(0)
    if len(head) < len(_LEGACY_MAGIC_PICKLE) and _LEGACY_MAGIC_PICKLE.startswith(head):
        raise ValueError(
            f"{path} is truncated: its {file_size} bytes end inside torch's magic number, "
            "the first thing a legacy checkpoint holds. Fetch or copy it again."
        )
    try:
        magic = _RestrictedUnpickler(f, path, file_size).load()
    except (pickle.UnpicklingError, EOFError, TypeError, KeyError, IndexError, struct.error) as error:
        raise ValueError(
            f"{path} is neither a zip nor a legacy PyTorch checkpoint (it does "
            f"not start with a pickle: {error!r:.200})"
        ) from error
    if magic != _LEGACY_MAGIC:
        raise ValueError(f"{path} is not a PyTorch checkpoint (its first pickle is not torch's magic number)")
    version = next_pickle("format version")
    if version != _LEGACY_VERSION:
        raise ValueError(f"{path} has legacy format version {_summary(version)}; only {_LEGACY_VERSION} is read")
    system = next_pickle("system info")
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

    result = next_pickle("object", storage_from_id)
    keys = next_pickle("list of storages")
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)) or set(keys) != set(roots):
        raise ValueError(f"{path}: its list of storages does not match the storages its tensors use")
    # Then each storage: an int64 element count, then its elements.
    expected = f.tell() + sum(8 + roots[key].numel * _element(roots[key].dtype, byteorder)[1] for key in keys)
    if file_size < expected:
        raise ValueError(
            f"{path} is truncated: it has {file_size} bytes, where its header and its "
            f"{len(keys)} storages take {expected} ({expected - file_size} bytes are missing). "
            "Fetch or copy it again."
        )
    for key in keys:
        storage = roots[key]
        dtype, size = _element(storage.dtype, byteorder)
        (numel,) = struct.unpack("<q" if byteorder == "little" else ">q", f.read(8))
        if numel != storage.numel:
            raise ValueError(
                f"{path}: storage {key!r} has {numel} elements where its tensors say {storage.numel}"
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
