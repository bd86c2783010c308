"""The torch-free checkpoint reader: the same arrays as torch.load, and no
pickled code run.

torch (the test extra) writes the files and reads them with
`torch.load(weights_only=True)`; the reader must give the same arrays, in
both of torch's formats, for every dtype and for tensors that are views
(offsets, strides, shared storages). Crafted files that name any other
global (os.system, builtins.eval, ...) must be refused before anything runs.
"""

import collections
import io
import os
import pickle
import re
import struct
import zipfile

import numpy as np
import pytest

from keras_resnet import torch_checkpoint

from conftest import akamaster_checkpoint

torch = pytest.importorskip("torch")

FORMATS = {"zip": True, "legacy": False}


def _as_numpy(value):
    if isinstance(value, torch.Tensor):
        value = value.detach()
        return (value.float() if value.dtype == torch.bfloat16 else value).numpy()
    return value


def _assert_same(ours, theirs, where="object"):
    """`ours` (numpy) equals `theirs` (torch), recursively, dtypes included."""
    if isinstance(theirs, torch.Tensor):
        expected = _as_numpy(theirs)
        assert isinstance(ours, np.ndarray), where
        assert (ours.dtype, ours.shape) == (expected.dtype, expected.shape), where
        np.testing.assert_array_equal(ours, expected, err_msg=where)
    elif isinstance(theirs, dict):
        assert type(ours) is type(theirs) and list(ours) == list(theirs), where
        for key in theirs:
            _assert_same(ours[key], theirs[key], f"{where}[{key!r}]")
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs)):
            _assert_same(a, b, f"{where}[{i}]")
    else:
        assert ours == theirs, where


def _checkpoint():
    """A checkpoint with every storage type and the awkward tensor layouts."""
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(4, 6, generator=gen)
    state = collections.OrderedDict()
    state["conv.weight"] = torch.randn(8, 3, 3, 3, generator=gen)
    state["view"] = base[1:, 2:]  # storage offset
    state["transposed"] = base.t()  # strides
    state["shares_base"] = base
    state["scalar"] = torch.tensor(7)
    state["empty"] = torch.zeros(0, 3)
    state["param"] = torch.nn.Parameter(torch.ones(2))
    for dtype in (torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32,
                  torch.int16, torch.int8, torch.uint8, torch.bool, torch.complex64,
                  torch.complex128):
        state[str(dtype)] = (torch.randn(5, generator=gen) * 50).to(dtype)
    return {"state_dict": state, "epoch": 3, "best_prec1": 91.5,
            "history": [1.5, "text", (1, None), state["view"]]}


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_arrays_as_torch_load(fmt, tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save(_checkpoint(), path, _use_new_zipfile_serialization=FORMATS[fmt])
    assert zipfile.is_zipfile(path) == (fmt == "zip")
    ours = torch_checkpoint.load(path)
    _assert_same(ours, torch.load(path, weights_only=True))
    # Tensors that shared a storage are still views of the same values, and
    # the same tensor saved twice is one array.
    np.testing.assert_array_equal(ours["state_dict"]["view"], ours["state_dict"]["shares_base"][1:, 2:])
    assert ours["history"][3] is ours["state_dict"]["view"]


@pytest.mark.realdata
@pytest.mark.parametrize("depth", [20, 32, 44, 56])
def test_akamaster_checkpoints_read_as_torch_reads_them(depth):
    path = akamaster_checkpoint(depth)
    ours = torch_checkpoint.load(path)
    theirs = torch.load(path, weights_only=True, map_location="cpu")
    _assert_same(ours, theirs)
    assert len(ours["state_dict"]) == 6 * ((depth - 2) // 6) * 5 + 5 + 2


class _RunsCommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def _legacy_file(payload):
    """A legacy-format file whose object pickle is `payload`."""
    header = b"".join(pickle.dumps(x, protocol=2) for x in (
        torch_checkpoint._LEGACY_MAGIC, torch_checkpoint._LEGACY_VERSION,
        {"protocol_version": 1001, "little_endian": True}))
    return header + payload + pickle.dumps([], protocol=2)


def _zip_file(payload):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/version", "3\n")
    return buffer.getvalue()


def _raw_global_call(module, name, argument):
    # GLOBAL module.name, MARK, argument, TUPLE, REDUCE, STOP (protocol 0).
    return f"c{module}\n{name}\n(V{argument}\ntR.".encode()


@pytest.mark.parametrize("wrap", [_legacy_file, _zip_file])
def test_refuses_pickled_code_without_running_it(wrap, tmp_path):
    marker = tmp_path / "ran"
    evil = pickle.dumps({"state_dict": _RunsCommand(f"touch {marker}")}, protocol=2)
    path = tmp_path / "evil.th"
    path.write_bytes(wrap(evil))
    with pytest.raises(ValueError, match=r"names the global posix\.system.*refusing") as error:
        torch_checkpoint.load(path)
    assert str(path) in str(error.value)
    assert not marker.exists()
    # torch's own safe loader agrees that this file is unsafe.
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)

    for module, name in [("builtins", "eval"), ("subprocess", "check_output"),
                         ("torch", "load"), ("numpy", "load")]:
        path.write_bytes(wrap(_raw_global_call(module, name, f"open('{marker}', 'w')")))
        with pytest.raises(ValueError, match=rf"global {module}\.{name}\b"):
            torch_checkpoint.load(path)
        assert not marker.exists()


def test_refuses_the_magic_pickle_too(tmp_path):
    # A legacy file is read pickle by pickle; the first one is restricted too.
    marker = tmp_path / "ran"
    path = tmp_path / "evil.th"
    path.write_bytes(pickle.dumps(_RunsCommand(f"touch {marker}")))
    with pytest.raises(ValueError, match="posix.system"):
        torch_checkpoint.load(path)
    assert not marker.exists()


class _StorageRef:
    pass


def _zip_with_tensor(tmp_path, numel, size, stride, offset=0):
    """A zip checkpoint of one float32 tensor over a storage of `numel`."""
    storage = _StorageRef()

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if obj is storage:
                return ("storage", torch.FloatStorage, "0", "cpu", numel)
            return None

    class Tensor:
        def __reduce__(self):
            return torch._utils._rebuild_tensor_v2, (storage, offset, size, stride, False,
                                                      collections.OrderedDict())

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump({"w": Tensor()})
    path = tmp_path / "crafted.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", buffer.getvalue())
        archive.writestr("archive/data/0", np.arange(numel, dtype="<f4").tobytes())
    return path


def test_crafted_layouts(tmp_path):
    got = torch_checkpoint.load(_zip_with_tensor(tmp_path, 6, (2, 2), (1, 3), offset=1))["w"]
    np.testing.assert_array_equal(got, [[1, 4], [2, 5]])
    # A tensor that would read past its storage is refused, not read.
    with pytest.raises(ValueError, match="reaches past its storage of 6 elements"):
        torch_checkpoint.load(_zip_with_tensor(tmp_path, 6, (3, 3), (3, 1)))
    with pytest.raises(ValueError, match="invalid layout"):
        torch_checkpoint.load(_zip_with_tensor(tmp_path, 6, (2,), (-1,)))


def test_files_that_are_not_checkpoints(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(100)}, path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    cases = {
        "truncated": (data[:-50], "truncated"),
        "noise": (b"\x00\x01garbage" * 10, "neither a zip nor a legacy PyTorch checkpoint"),
        "plain_pickle": (pickle.dumps({"a": 1}), "not a PyTorch checkpoint"),
        "other_zip": (_zip_without_pickle(), "no <archive>/data.pkl"),
    }
    for name, (content, message) in cases.items():
        bad = tmp_path / f"{name}.pt"
        bad.write_bytes(content)
        with pytest.raises(ValueError, match=message) as error:
            torch_checkpoint.load(bad)
        assert str(bad) in str(error.value), name

    # A zip whose storage record is shorter than its tensor.
    zipped = tmp_path / "zipped.pt"
    torch.save({"w": torch.ones(100)}, zipped)
    short = tmp_path / "short.pt"
    with zipfile.ZipFile(zipped) as src, zipfile.ZipFile(short, "w") as dst:
        for item in src.infolist():
            content = src.read(item)
            dst.writestr(item, content[:40] if item.filename.endswith("data/0") else content)
    with pytest.raises(ValueError, match="has 40 bytes, not the 100 x 4"):
        torch_checkpoint.load(short)


def _zip_without_pickle():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")
    return buffer.getvalue()


def test_big_endian_legacy_file(tmp_path):
    # Legacy files record the writer's byte order; the arrays come back native.
    values = np.arange(4, dtype=">f4")

    class Storage:
        pass

    storage = Storage()

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, "k", "cpu", 4, None) if obj is storage else None

    class Tensor:
        def __reduce__(self):
            return torch._utils._rebuild_tensor_v2, (storage, 0, (4,), (1,), False,
                                                      collections.OrderedDict())

    body = io.BytesIO()
    Pickler(body, protocol=2).dump({"w": Tensor()})
    header = b"".join(pickle.dumps(x, protocol=2) for x in (
        torch_checkpoint._LEGACY_MAGIC, torch_checkpoint._LEGACY_VERSION,
        {"protocol_version": 1001, "little_endian": False}))
    path = tmp_path / "big.th"
    path.write_bytes(header + body.getvalue() + pickle.dumps(["k"], protocol=2)
                     + struct.pack(">q", 4) + values.tobytes())
    got = torch_checkpoint.load(path)["w"]
    assert got.dtype == np.dtype("float32") and got.dtype.isnative
    np.testing.assert_array_equal(got, [0, 1, 2, 3])


# A reader of untrusted files must take time and memory linear in the file's
# size. These files are a few hundred bytes each; each would make a reader
# that walks, hashes, prints or copies naively do 2**40 steps or allocate
# far more than the file holds. The load runs in a subprocess so that a
# reader that hangs fails the test instead of hanging it.

_LOAD_IN_SUBPROCESS = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("torch_checkpoint", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
try:
    result = module.load(sys.argv[2])
except ValueError as error:
    print("ValueError:", error)
else:
    tower = result["state_dict"]["tower"] if isinstance(result, dict) and "state_dict" in result else None
    print("loaded", tower is not None and tower[0] is tower[1])
"""


def _load_in_subprocess(path, timeout=60):
    import subprocess
    import sys

    try:
        done = subprocess.run(
            [sys.executable, "-c", _LOAD_IN_SUBPROCESS, torch_checkpoint.__file__, str(path)],
            capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"torch_checkpoint.load({path.name}) did not finish in {timeout} s")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def _tower(levels=40):
    """A tuple nested `levels` deep, each level the same object twice: a few
    hundred bytes pickled (the pickle memoises it), 2**levels tuples unshared."""
    tower = (0,)
    for _ in range(levels):
        tower = (tower, tower)
    return tower


@pytest.mark.parametrize("wrap", [_legacy_file, _zip_file])
def test_shared_nested_tuples_load_in_linear_time(wrap, tmp_path):
    path = tmp_path / "tower.th"
    path.write_bytes(wrap(pickle.dumps({"state_dict": {"tower": _tower()}}, protocol=2)))
    assert path.stat().st_size < 1000
    # Loaded as torch.load loads it, the sharing kept.
    assert _load_in_subprocess(path) == "loaded True"


def _hashing(how, key):
    """A pickle that hashes `key` while it is read (pickling such an object
    here would hash it here, so the opcodes are written by hand)."""
    key = pickle.dumps(key, protocol=2)[2:-1]
    return b"\x80\x02" + {
        "dict_key": b"}" + key + b"K\x01s",                         # {key: 1}
        "frozenset": b"(" + key + b"\x91",                            # frozenset({key})
        "ordered_dict_args": b"ccollections\nOrderedDict\n(](" + key + b"K\x01tatR",
    }[how] + b"."


@pytest.mark.parametrize("how", ["dict_key", "frozenset", "ordered_dict_args"])
@pytest.mark.parametrize("wrap", [_legacy_file, _zip_file])
def test_tuple_keys_that_would_take_exponential_hashing_are_refused(wrap, how, tmp_path):
    # Hashing a tuple hashes its items, shared or not: 2**40 steps inside the
    # unpickler, before any of our code sees the object.
    path = tmp_path / "keyed.th"
    path.write_bytes(wrap(_hashing(how, _tower())))
    out = _load_in_subprocess(path)
    assert out.startswith("ValueError:") and str(path) in out, out
    assert re.search("hash|OrderedDict from arguments", out), out
    # The same pickles with a small key load, as pickle reads them.
    path.write_bytes(wrap(_hashing(how, (1, 2))))
    expected = {"dict_key": {(1, 2): 1}, "frozenset": frozenset({(1, 2)})}.get(how)
    if expected is None:
        with pytest.raises(ValueError, match="OrderedDict from arguments, which pickle never writes"):
            torch_checkpoint.load(path)
    else:
        assert torch_checkpoint.load(path) == expected == pickle.loads(_hashing(how, (1, 2)))


def test_error_messages_do_not_print_shared_tuples_in_full(tmp_path):
    # A storage record that is not one names what it holds; printing the
    # whole tower would take 2**40 steps.
    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", _tower()) if obj == "ref" else None

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump({"w": "ref"})
    path = tmp_path / "record.pt"
    path.write_bytes(_zip_file(buffer.getvalue()))
    out = _load_in_subprocess(path)
    assert out.startswith("ValueError:") and "malformed storage record" in out, out
    assert len(out) < 1000, out


def test_a_tensor_larger_than_its_storage_is_refused(tmp_path):
    # Zero strides make one stored float a 4000 x 4000 tensor: 64 MB from a
    # file of 300 bytes (and any size for a few bytes more).
    path = _zip_with_tensor(tmp_path, 1, (4000, 4000), (0, 0))
    assert path.stat().st_size < 1000
    with pytest.raises(ValueError, match=r"16000000 elements.*storage of 1 element"):
        torch_checkpoint.load(path)


def test_tensors_sharing_a_storage_share_its_memory(tmp_path):
    # 200 views of one storage: 200 references in the pickle, not 200 copies
    # of the storage in memory (torch.load shares the storage too).
    numel = 10_000
    storage = _StorageRef()

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, "0", "cpu", numel) if obj is storage else None

    class View:
        def __init__(self, offset):
            self.offset = offset

        def __reduce__(self):
            return torch._utils._rebuild_tensor_v2, (
                storage, self.offset, (numel - 200,), (1,), False, collections.OrderedDict())

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump({f"v{i}": View(i) for i in range(200)})
    path = tmp_path / "views.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", buffer.getvalue())
        archive.writestr("archive/data/0", np.arange(numel, dtype="<f4").tobytes())
    got = torch_checkpoint.load(path)
    np.testing.assert_array_equal(got["v7"][:3], [7, 8, 9])
    assert all(np.shares_memory(got["v0"], got[f"v{i}"]) for i in range(200))


def test_compressed_zip_records_are_refused(tmp_path):
    # torch.save stores its records uncompressed; bzip2 and lzma expand
    # without a useful bound (a few kB become GBs), so they are refused.
    # (deflate, at most ~1000x, is read: a re-zipped checkpoint still loads.)
    source = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(10_000)}, source)
    for method, name in ((zipfile.ZIP_BZIP2, "bzip2"), (zipfile.ZIP_LZMA, "lzma"),
                         (zipfile.ZIP_DEFLATED, "deflate")):
        repacked = tmp_path / f"{name}.pt"
        with zipfile.ZipFile(source) as src, zipfile.ZipFile(repacked, "w", method) as dst:
            for item in src.infolist():
                dst.writestr(item.filename, src.read(item))
        if name == "deflate":
            np.testing.assert_array_equal(torch_checkpoint.load(repacked)["w"], np.zeros(10_000))
            continue
        with pytest.raises(ValueError, match=rf"{re.escape(str(repacked))}.*compressed with {name}"):
            torch_checkpoint.load(repacked)
