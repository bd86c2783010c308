"""The torch-free checkpoint reader: keys that share a hash, and files cut short.

Python does not randomise the hashes of ints (an int hashes to itself modulo
2**61 - 1), so a dict whose keys are `(2**61 - 1) * i` puts every key in one
hash chain: each insertion compares the key with all earlier ones, n**2 / 2
steps for n keys. The reader charged a key's hashing but not that search, so
a 279 kB legacy file with 20,000 such keys took 10-23 s. The pickles here are
written opcode by opcode: building such a dict in the test would itself take
quadratic time.

A checkpoint cut short (an interrupted download or copy) was reported as an
EOFError, a struct error, "holds an object this reader does not read" (a
zip without its end is read as a pickle) or "truncated or has 9216 elements
where its tensors say 9216"; it must be called truncated, with its size.
"""

import pickle
import time
import zipfile

import pytest

from keras_resnet import torch_checkpoint

COLLIDING = (2**61 - 1)  # every multiple hashes to 0
# Enough keys in one chain to exceed the budget (64 steps per byte of
# pickle, about 900 per key here): n**2 / 2 > 900 n from n = 1800 on.
N = 8000


def _int(value):
    """LONG1: an int of any size (pickle writes big ints so)."""
    data = pickle.encode_long(value)
    return b"\x8a" + bytes([len(data)]) + data


def _legacy(payload):
    """A legacy checkpoint whose object is the protocol-2 pickle `payload`."""
    header = b"".join(pickle.dumps(x, protocol=2) for x in (
        torch_checkpoint._LEGACY_MAGIC, torch_checkpoint._LEGACY_VERSION,
        {"protocol_version": 1001, "little_endian": True}))
    return header + b"\x80\x02" + payload + b"." + pickle.dumps([], protocol=2)


def _setitems(keys):
    """EMPTY_DICT, then SETITEMS in batches of 1000, as pickle writes a dict."""
    out = [b"}"]
    for start in range(0, len(keys), 1000):
        out.append(b"(" + b"".join(_int(k) + b"K\x01" for k in keys[start:start + 1000]) + b"u")
    return b"".join(out)


def _state_dict(keys):
    """{"state_dict": {key: 1 for key in keys}}."""
    return b"}X\x0a\x00\x00\x00state_dict" + _setitems(keys) + b"s"


def _best_time(path, runs=3):
    """The fastest of `runs` loads (the others shared the CPU), and the last outcome."""
    best, outcome = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        try:
            outcome = torch_checkpoint.load(path)
        except ValueError as error:
            outcome = error
        best = min(best, time.perf_counter() - start)
    return best, outcome


def test_colliding_int_keys_take_time_linear_in_the_file(tmp_path):
    # The same file with keys (2**61 - 1) * i + i: as many bytes, distinct
    # hashes. It is the linear baseline, measured here, on this machine, now.
    colliding, distinct = tmp_path / "colliding.th", tmp_path / "distinct.th"
    colliding.write_bytes(_legacy(_state_dict([COLLIDING * i for i in range(N)])))
    distinct.write_bytes(_legacy(_state_dict([COLLIDING * i + i for i in range(N)])))
    assert abs(colliding.stat().st_size - distinct.stat().st_size) < 0.01 * distinct.stat().st_size
    baseline, loaded = _best_time(distinct)
    assert len(loaded["state_dict"]) == N and loaded["state_dict"][COLLIDING * 5 + 5] == 1
    took, refused = _best_time(colliding)
    assert isinstance(refused, ValueError), refused
    assert str(colliding) in str(refused) and "share the hash 0" in str(refused), refused
    # Quadratic, it took 67x the baseline at this size (1.6 s); refused early, at most about 1x.
    assert took < 4 * baseline + 0.05, (took, baseline)


def _ordered_dict():
    return b"ccollections\nOrderedDict\n)R"


@pytest.mark.parametrize("how", ["setitems", "setitem", "dict", "additems", "frozenset", "build"])
def test_colliding_keys_are_refused_wherever_they_are_inserted(how, tmp_path):
    keys = [COLLIDING * i for i in range(N // 2)]
    items = b"".join(_int(k) + b"K\x01" for k in keys)
    members = b"".join(_int(k) for k in keys)
    payload = {
        "setitems": _setitems(keys),
        "setitem": b"}" + b"".join(_int(k) + b"K\x01s" for k in keys),
        "dict": b"(" + items + b"d",
        "additems": b"\x8f(" + members + b"\x90",
        "frozenset": b"(" + members + b"\x91",
        # An OrderedDict's attributes set from a state dict (BUILD), as
        # torch.save writes a state dict's `_metadata`: the state dict is paid
        # for, then each BUILD puts its keys into another instance's __dict__.
        "build": _setitems(keys[:1000]) + b"q\x00]" + (_ordered_dict() + b"h\x00ba") * 100,
    }[how]
    path = tmp_path / "keys.th"
    path.write_bytes(_legacy(payload))
    with pytest.raises(ValueError, match=r"keys of one dict or set share the hash 0") as error:
        torch_checkpoint.load(path)
    assert str(path) in str(error.value)


def test_a_huge_int_hashed_again_and_again_is_refused(tmp_path):
    # An int does not cache its hash: one of 100 kB, put into 50,000 sets
    # (5 bytes each), would be hashed digit by digit 50,000 times.
    data = pickle.encode_long(2**800_000 - 1)
    huge = b"\x8b" + len(data).to_bytes(4, "little") + data  # LONG4
    payload = huge + b"q\x00]" + b"\x8f(h\x00\x90a" * 50_000
    path = tmp_path / "huge.th"
    path.write_bytes(_legacy(payload))
    with pytest.raises(ValueError, match=r"an int is hashed digit by digit each time"):
        torch_checkpoint.load(path)


def test_int_keys_with_their_own_hashes_load(tmp_path):
    # An optimizer's state is keyed 0, 1, 2, ...: no two share a hash.
    path = tmp_path / "optimizer.th"
    path.write_bytes(_legacy(b"}(" + b"".join(_int(i) + _int(-i) for i in range(5000)) + b"u"))
    assert torch_checkpoint.load(path) == {i: -i for i in range(5000)}


def test_memo_indices_that_share_hashes_are_refused(tmp_path):
    # PUT takes any decimal index; picklers number them 0, 1, 2, ...
    payload = b"]" + b"".join(b"K\x01p%d\na" % (COLLIDING * i) for i in range(1, 4))
    path = tmp_path / "memo.th"
    path.write_bytes(_legacy(payload))
    with pytest.raises(ValueError, match=r"memo index 2305843009213693951; picklers number"):
        torch_checkpoint.load(path)
    path.write_bytes(_legacy(b"]" + b"".join(b"K\x01p%d\na" % i for i in range(1, 4))))
    assert torch_checkpoint.load(path) == [1, 1, 1]


# Files cut short.

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The bytes of one small state dict saved by torch.save in both formats."""
    folder = tmp_path_factory.mktemp("saved")
    state = {"conv.weight": torch.arange(240.0).reshape(4, 6, 10), "fc.bias": torch.ones(10)}
    files = {}
    for fmt, zipped in (("legacy", False), ("zip", True)):
        torch.save(state, folder / fmt, _use_new_zipfile_serialization=zipped)
        files[fmt] = (folder / fmt).read_bytes()
    return files


def _cut(tmp_path, data, size):
    path = tmp_path / f"cut{size}.pt"
    path.write_bytes(data[:size])
    return path


def test_legacy_files_cut_anywhere_are_called_truncated(saved, tmp_path):
    data = saved["legacy"]
    header = len(torch_checkpoint._LEGACY_MAGIC_PICKLE)
    start = len(data) - (8 + 240 * 4) - (8 + 10 * 4)  # where the storages begin
    sizes = {
        "magic number": [1, 5, header - 1],
        "pickled (format version|system info|object|list of storages)": list(range(header, start, 7)),
    }
    for where, cuts in sizes.items():
        for size in cuts:
            path = _cut(tmp_path, data, size)
            expected = rf"is truncated: its {size} bytes end inside .*{where}"
            with pytest.raises(ValueError, match=expected) as e:
                torch_checkpoint.load(path)
            assert str(e.value).startswith(str(path)), e.value
    # In the storages: the file says how long it should be.
    for size in (start, start + 5, len(data) // 2 + 500, len(data) - 1):
        path = _cut(tmp_path, data, size)
        expected = (rf"is truncated: it has {size} bytes, where .* 2 storages take {len(data)} "
                    rf"\({len(data) - size} bytes are missing\)")
        with pytest.raises(ValueError, match=expected):
            torch_checkpoint.load(path)


def test_zip_files_cut_anywhere_are_called_truncated(saved, tmp_path):
    data = saved["zip"]
    for size in (1, 3, 4, 30, len(data) // 3, len(data) // 2, len(data) - 30, len(data) - 1):
        path = _cut(tmp_path, data, size)
        expected = rf"{path} is truncated: it starts as a zip file .* after {size} byte"
        with pytest.raises(ValueError, match=expected):
            torch_checkpoint.load(path)


def test_an_empty_file_is_called_empty(tmp_path):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=rf"{path} is empty \(0 bytes\): truncated"):
        torch_checkpoint.load(path)


def test_whole_files_still_load(saved, tmp_path):
    for fmt, data in saved.items():
        path = tmp_path / f"whole_{fmt}.pt"
        path.write_bytes(data)
        loaded = torch_checkpoint.load(path)
        assert loaded["conv.weight"].shape == (4, 6, 10) and loaded["conv.weight"][3, 5, 9] == 239.0
        assert zipfile.is_zipfile(path) == (fmt == "zip")
