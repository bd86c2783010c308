"""Data: sources, their errors, the paper's augmentations, the tf.data pipelines."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

import reference

from zoo import augment
from zoo import datasets
from zoo import pipeline
from zoo import recipes

TINY = dataclasses.replace(
    recipes.get("cifar10_resnet20"), val_size=4, batch_size=8, steps=8, epoch_steps=4
)


def make_folder(root, classes=("cat", "dog"), per_class=6, size=32, splits=("train", "test")):
    rng = np.random.default_rng(0)
    for split in splits:
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:03d}.jpg")
    return root


def test_parse_rejects_unknown_specs():
    assert datasets.parse("folder:/x") == datasets.Dataset("folder", "/x")
    assert tuple(datasets.parse("tfds:cifar10")) == ("tfds", "cifar10")
    with pytest.raises(ValueError, match=r"Received 'imagenet'"):
        datasets.parse("imagenet")


def test_digits_are_real_images_at_the_recipe_size():
    splits = datasets.load_arrays(datasets.parse("digits"), dataclasses.replace(TINY, val_size=200))
    x, y = splits.train
    assert x.shape[1:] == (32, 32, 3) and x.dtype == np.uint8
    assert len(y) + len(splits.val[1]) + len(splits.test[1]) == 1797
    assert len(splits.val[1]) == 200 and x.max() == 255
    assert sorted(set(y.tolist())) == list(range(10))
    # 8x8 upsampled by 4 fills 32x32: every 4x4 block is constant.
    assert np.array_equal(x[0, ::4, ::4].repeat(4, 0).repeat(4, 1), x[0])


def test_split_is_deterministic_and_disjoint():
    images = np.arange(100)[:, None]
    labels = np.arange(100)
    (a, _), (va, _) = datasets.split_train_val(images, labels, 10, seed=1)
    (b, _), (vb, _) = datasets.split_train_val(images, labels, 10, seed=1)
    (_, _), (vc, _) = datasets.split_train_val(images, labels, 10, seed=2)
    assert np.array_equal(va, vb) and not np.array_equal(va, vc)
    assert not set(a.ravel()) & set(va.ravel()) and len(a) == 90
    with pytest.raises(ValueError, match="val_size"):
        datasets.split_train_val(images, labels, 100, seed=1)


def test_folder_errors_are_clear(tmp_path):
    root = make_folder(tmp_path / "ok")
    assert datasets.check_folder(root) == ["cat", "dog"]
    (root / "train" / "cow").mkdir()
    with pytest.raises(ValueError, match=r"Class folder .*train/cow holds no images"):
        datasets.check_folder(root)
    Image.new("RGB", (32, 32)).save(root / "train" / "cow" / "0.jpg")
    with pytest.raises(ValueError, match=r"only in train: \['cow'\]; only in test: \[\]"):
        datasets.check_folder(root)
    with pytest.raises(ValueError, match="has no test/ directory"):
        datasets.check_folder(make_folder(tmp_path / "half", splits=("train",)))


def test_corrupt_image_names_the_file(tmp_path):
    root = make_folder(tmp_path)
    bad = root / "train" / "dog" / "004.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(ValueError, match=f"Cannot decode image file {bad}"):
        datasets.load_arrays(datasets.parse(f"folder:{root}"), TINY)
    # The streaming (ImageNet-style) decoder names it too.
    with pytest.raises(tf.errors.InvalidArgumentError, match=str(bad)):
        pipeline.read_image_file(tf.constant(str(bad)))


def test_folder_arrays_and_mean(tmp_path):
    root = make_folder(tmp_path, size=40)  # resized to the recipe's 32
    data = pipeline.build(datasets.parse(f"folder:{root}"), TINY)
    assert data.classes == ["cat", "dog"] and data.num_train == 8
    images, labels = next(iter(data.train))
    assert images.shape == (8, 32, 32, 3) and images.dtype == tf.float32
    assert data.mean.shape == (32, 32, 3)
    test = np.concatenate([y.numpy() for _, y in data.test])
    assert sorted(test.tolist()) == [0] * 6 + [1] * 6


def test_imagenet_augmentation_shapes_and_eval_crop():
    image = tf.cast(tf.random.uniform((300, 400, 3), 0, 255, seed=2), tf.uint8)
    out = augment.imagenet_train(image, tf.constant([1, 2], tf.int64))
    assert out.shape == (224, 224, 3)
    center = augment.imagenet_eval(image)
    assert center.shape == (224, 224, 3)
    resized = augment.resize_shorter(tf.cast(image, tf.float32), 256)
    assert resized.shape[:2] == (256, 341)


def test_tfds_cifar10_through_mock_data():
    with tfds.testing.mock_data(num_examples=24):
        data = pipeline.build(datasets.parse("tfds:cifar10"), TINY)
    assert len(data.classes) == 10  # mock metadata has no class names
    images, labels = next(iter(data.train))
    assert images.shape == (8, 32, 32, 3)


def test_tfds_imagenet_streams_through_mock_data():
    recipe = dataclasses.replace(
        recipes.get("imagenet_resnet18"),
        image_size=32,
        scale_min=36,
        scale_max=40,
        eval_resize=36,
        val_size=2,
        batch_size=4,
        mean_examples=4,
        steps=4,
        epoch_steps=2,
    )
    with tfds.testing.mock_data(num_examples=10):
        data = pipeline.build(datasets.parse("tfds:imagenet2012"), recipe, data_dir="/nonexistent/manual")
        images, _ = next(iter(data.train))
        test_images, _ = next(iter(data.test))
    assert len(data.classes) == 1000
    assert images.shape == (4, 32, 32, 3) and test_images.shape[1:] == (32, 32, 3)
    assert data.mean.shape == (32, 32, 3)


def test_pad_crop_flip_cuts_each_image_at_its_own_offset_exactly():
    from zoo import augment_ops

    rng = np.random.default_rng(3)
    images = rng.uniform(0, 255, (12, 32, 32, 3)).astype("float32")
    images[0, 5, 7, 1] = np.nan  # kept where it lands...
    images[1, 0, 0, 0] = np.inf  # ...and gone where it is cropped away
    offsets = rng.integers(0, 9, (12, 2)).astype("int32")
    offsets[1] = (8, 8)  # crops away row 0 and column 0 of image 1
    flips = rng.random(12) < 0.5
    flips[:2] = (True, False)
    out = np.asarray(augment_ops.pad_crop_flip(images, offsets, flips, 4))
    expected = reference.pad_crop_flip(images, offsets, flips, 4)
    np.testing.assert_array_equal(out, expected)  # NaN where NaN, bit for bit
    assert np.isnan(out[0]).sum() == 1 and np.isfinite(out[1]).all()
    # uint8 stays uint8; pad=0 with no flips is the identity.
    raw = rng.integers(0, 256, (4, 32, 32, 3)).astype("uint8")
    same = augment_ops.pad_crop_flip(raw, np.zeros((4, 2), "int32"), np.zeros(4, bool), 0)
    assert np.asarray(same).dtype == np.uint8 and np.array_equal(np.asarray(same), raw)


def test_tf_pipeline_feeds_what_the_jax_loops_feed():
    """Same seed, same step: the tf.data batch is fit_arrays.Batches' batch, pixel for pixel."""
    from zoo import fit_arrays

    recipe = dataclasses.replace(TINY, batch_size=8, pad=4, flip=True, seed=3)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 32, 32, 3)).astype("uint8")
    y = rng.integers(0, 2, 20).astype("int32")
    splits = datasets.ArraySplits(train=(x, y), val=(x[:4], y[:4]), test=(x[:4], y[:4]), classes=["a", "b"])
    data = pipeline.from_arrays(splits, recipe, 8)
    batches = fit_arrays.Batches(x, y, 8, 5, recipe.seed, recipe.pad, recipe.flip)
    tf_batches = list(data.train_from(3).take(4))  # steps 3..6, across the pass at step 2.5
    for i, (images, labels) in enumerate(tf_batches):
        step = 3 + i
        batches.epoch, index = divmod(step, 5)
        expected_images, expected_labels = batches[index]
        assert images.dtype == tf.float32 and float(tf.reduce_max(images)) <= 255
        np.testing.assert_array_equal(images.numpy(), expected_images, err_msg=f"step {step}")
        np.testing.assert_array_equal(labels.numpy(), expected_labels)
    np.testing.assert_array_equal(data.mean, x.mean(axis=0, dtype=np.float64).astype(np.float32))


def test_stream_draws_depend_on_seed_and_step_only():
    from zoo import stream

    offsets, flips = stream.crop_offsets_and_flips(128, 0, 100, 50, 4, True)
    assert offsets.shape == (50, 128, 2) and flips.shape == (50, 128)
    assert offsets.min() == 0 and offsets.max() == 8 and flips.dtype == bool
    # Any window into the stream is the same draws: resume and seeds agree.
    later, later_flips = stream.crop_offsets_and_flips(128, 0, 130, 5, 4, True)
    assert np.array_equal(later, offsets[30:35]) and np.array_equal(later_flips, flips[30:35])
    other, _ = stream.crop_offsets_and_flips(128, 1, 100, 50, 4, True)
    assert not np.array_equal(other, offsets)
    # Uniform and independent: 6,400 images x 2 axes over 9 offsets, and
    # flips with p = 0.5 that do not follow the offsets.
    counts = np.bincount(offsets.ravel(), minlength=9)
    expected = offsets.size / 9
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 26.1  # chi-square, 8 degrees of freedom, p = 0.001
    assert abs(flips.mean() - 0.5) < 4 * 0.5 / np.sqrt(flips.size)
    even = offsets[..., 0] % 2 == 0
    assert abs(flips[even].mean() - flips[~even].mean()) < 4 * 0.5 * np.sqrt(1 / even.sum() + 1 / (~even).sum())
    no_pad, no_flip = stream.crop_offsets_and_flips(8, 0, 0, 3, 0, False)
    assert not no_pad.any() and not no_flip.any()


# --- Issue 19: images and folders that decoded wrongly or not at all ---------

def test_16_bit_grayscale_png_is_scaled_not_clipped(tmp_path):
    gray = (np.arange(32 * 32, dtype=np.int64).reshape(32, 32) * 64).astype(np.uint16)
    Image.fromarray(gray).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")  # Pillow's 16-bit mode
    decoded = datasets.decode_file(tmp_path / "g16.png", 32)
    # Was a white image (Pillow's convert("RGB") clips 16-bit values): mean 255.
    expected = (gray >> 8).astype(np.uint8)
    np.testing.assert_array_equal(decoded, np.repeat(expected[..., None], 3, axis=-1))
    # The streaming (TF) decoder gives the same pixels.
    streamed = pipeline.read_image_file(tf.constant(str(tmp_path / "g16.png"))).numpy()
    np.testing.assert_array_equal(decoded, streamed)


def test_macos_appledouble_and_hidden_files_are_skipped(tmp_path):
    root = make_folder(tmp_path / "data", per_class=6)
    for split in ("train", "test"):
        (root / split / "cat" / "._000.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
        (root / split / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    splits = datasets.load_arrays(datasets.parse(f"folder:{root}"), TINY)
    assert splits.classes == ["cat", "dog"] and len(splits.test[1]) == 12


def test_a_file_where_a_class_folder_belongs_is_refused(tmp_path):
    root = make_folder(tmp_path / "data", classes=("cat", "dog", "emu"))
    for split in ("train", "test"):
        (root / split / "fox.zip").write_bytes(b"PK\x03\x04")  # a class left zipped
    with pytest.raises(ValueError, match=r"train holds fox.zip, which is not a class folder"):
        datasets.check_folder(root)


def test_decompression_bomb_names_the_file(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "data")
    bomb = root / "train" / "cat" / "bomb.png"
    Image.new("RGB", (300, 300)).save(bomb)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300 * 300 // 4)  # 300x300 is > 2x the limit
    with pytest.raises(ValueError, match=rf"Cannot decode image file {bomb}: .*decompression bomb"):
        datasets.load_arrays(datasets.parse(f"folder:{root}"), TINY)


class _Silent:
    """A loopback TCP server that accepts connections and never answers."""

    def __enter__(self):
        import socket

        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(8)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}/cifar-10-binary.tar.gz"
        return self

    def __exit__(self, *exc):
        self.socket.close()


@pytest.mark.parametrize("host", ["refuses", "never answers"])
def test_tfds_download_that_cannot_happen_fails_fast_saying_what_to_do(tmp_path, monkeypatch, host):
    import time

    from tensorflow_datasets.core.download import checksums

    with _Silent() as server:
        url = server.url
        if host == "refuses":
            server.socket.close()  # Nothing listens there now.
        info = checksums.UrlInfo(size=1, checksum="0" * 64, filename="cifar-10-binary.tar.gz")
        monkeypatch.setattr(datasets, "tfds_downloads", lambda builder: {url: info}, raising=False)
        monkeypatch.setattr(datasets, "TFDS_PROBE_TIMEOUT_S", 1, raising=False)
        start = time.perf_counter()
        # Was: tfds retried for 210 s, then raised requests' ConnectionError.
        with pytest.raises(ValueError) as error:
            datasets.load_arrays(datasets.parse("tfds:cifar10"), TINY, data_dir=str(tmp_path / "tfds"))
        assert time.perf_counter() - start < 30
    message = str(error.value)
    assert f"--dataset=tfds:cifar10 is not prepared in {tmp_path / 'tfds'}" in message
    assert f"put cifar-10-binary.tar.gz (from {url}) into {tmp_path / 'tfds' / 'downloads' / 'manual'}" in message
    assert "--dataset=folder:PATH" in message


def test_tfds_file_in_the_manual_folder_needs_no_download(tmp_path, monkeypatch):
    from tensorflow_datasets.core.download import checksums

    manual = tmp_path / "tfds" / "downloads" / "manual"
    manual.mkdir(parents=True)
    (manual / "cifar-10-binary.tar.gz").write_bytes(b"")
    info = checksums.UrlInfo(size=1, checksum="0" * 64, filename="cifar-10-binary.tar.gz")
    monkeypatch.setattr(datasets, "tfds_downloads", lambda builder: {"http://127.0.0.1:9/x": info})
    datasets.check_downloadable(datasets.tfds_builder("cifar10", str(tmp_path / "tfds")))


def test_streamed_folder_split_is_the_in_memory_split(tmp_path):
    # pipeline.sources (ImageNet-style streaming) and datasets.load_arrays
    # (CIFAR-style, in memory) hold out the same seeded val images.
    root = make_folder(tmp_path, per_class=7)
    recipe = dataclasses.replace(recipes.get("imagenet_resnet18"), val_size=5, seed=3)
    src = pipeline.sources(datasets.parse(f"folder:{root}"), recipe)
    paths, labels = datasets.list_folder(root / "train", ["cat", "dog"])
    train, val = datasets.train_val_indices(len(labels), 5, 3)
    assert [p.decode() for p, _ in src.train.as_numpy_iterator()] == [paths[i] for i in train]
    assert [p.decode() for p, _ in src.val.as_numpy_iterator()] == [paths[i] for i in val]
    assert src.num_train == 9 and src.classes == ["cat", "dog"]
    assert src.decode is pipeline.read_image_file
    with pytest.raises(ValueError, match=r"`val_size` must be in \[0, 14\).*Received val_size=14"):
        pipeline.sources(datasets.parse(f"folder:{root}"), dataclasses.replace(recipe, val_size=14))
