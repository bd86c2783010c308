"""Class names (keras_resnet.labels): every preset's, decode_predictions, and
the names a preset model takes into its export.

Fast, except one real-data test: the CIFAR-10 names are the JPEG copy's
class folders, and a preset's decoded top-1 names its images' folders.
"""

import importlib.resources
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_resnet
from keras_resnet import class_lists
from keras_resnet import labels
from keras_resnet import presets
from keras_resnet import registry
from keras_resnet import serving

from conftest import in_ci
from helpers_presets import isolated  # noqa: F401 (autouse: the registry is restored after each test)

CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def keras_hub_imagenet():
    """keras_hub's ImageNet table (the `peers` extra): skipped without it, except under CI."""
    try:
        from keras_hub.src.utils.imagenet import imagenet_utils
    except ImportError as error:
        if in_ci():
            pytest.fail(f"keras_hub (the peers extra) is missing: {error}")
        pytest.skip(f"needs keras_hub from the peers extra: pip install '.[peers]' ({error})")
    return imagenet_utils


@pytest.fixture(scope="module")
def cifar_model():
    """ResNet-20 with the shipped CIFAR-10 preset (no download)."""
    return keras_resnet.ResNet(20, weights="cifar10")


def test_imagenet_class_file_is_its_sources():
    table = class_lists.IMAGENET_1K
    wnids = (importlib.resources.files("tensorflow_datasets") / "datasets" / "imagenet2012" / "labels.txt")
    assert list(table.ids) == wnids.read_text().split()
    assert list(table.ids) == sorted(table.ids) and len(set(table.ids)) == 1000
    assert (table.ids[0], table[0]) == ("n01440764", "tench")
    assert (table.ids[999], table[999]) == ("n15075141", "toilet_tissue")
    repeated = {name for name in table if list(table).count(name) > 1}
    assert repeated == {"crane", "maillot"}
    distinct = table.distinct_names()
    assert len(set(distinct)) == 1000 and distinct[134] == "crane (n02012849)"
    hub = keras_hub_imagenet().IMAGENET_NAMES
    assert [hub[i] for i in range(1000)] == list(zip(table.ids, table.names))


def test_every_builtin_preset_carries_its_class_names():
    for name, entries in presets.BUILTIN.items():
        for depth, preset in entries.items():
            expected = class_lists.CIFAR10 if preset.family == "cifar" else class_lists.IMAGENET_1K
            assert preset.class_names is expected, (name, depth)
            assert len(preset.class_names) == preset.classes
    assert tuple(class_lists.CIFAR10) == CIFAR10 and class_lists.CIFAR10.ids is None


def test_decode_is_keras_hubs_on_imagenet():
    # keras_hub's decoder is keras.applications' (the same table, the same contract).
    preds = np.random.default_rng(0).random((4, 1000)).astype("float32")
    ours = keras_resnet.decode_predictions(preds, top=3)
    theirs = keras_hub_imagenet().decode_imagenet_predictions(preds, top=3, include_synset_ids=True)
    assert [[p[:2] for p in row] for row in ours] == [[t[:2] for t in row] for row in theirs]
    for row, values in zip(ours, preds):
        assert [p.score for p in row] == sorted(values.tolist(), reverse=True)[:3]
        assert all(type(p.score) is float for p in row)


def test_decode_takes_every_form_of_classes(cifar_model):
    logits = np.arange(20, dtype="float32").reshape(2, 10)[:, ::-1]  # class 0 highest
    expected = [[(0, "airplane", 9.0), (1, "automobile", 8.0)], [(0, "airplane", 19.0), (1, "automobile", 18.0)]]
    for classes in ("cifar10", "akamaster_cifar10", "zoo_cifar10", list(CIFAR10), np.array(CIFAR10),
                    class_lists.CIFAR10, cifar_model):
        assert keras_resnet.decode_predictions(logits, top=2, classes=classes) == expected, classes
    assert keras_resnet.decode_predictions(tf.constant(logits), top=2, classes="cifar10") == expected
    assert keras_resnet.decode_predictions(logits.tolist(), top=2, classes="cifar10") == expected
    imagenet = keras_resnet.decode_predictions(np.eye(1000)[[2]], top=1, classes="imagenet")
    assert imagenet == [[("n01484850", "great_white_shark", 1.0)]]


def test_decode_order_ties_and_empty_batch():
    tied = np.array([[0.2, 0.4, 0.4, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    assert [p.class_id for p in keras_resnet.decode_predictions(tied, top=3, classes="cifar10")[0]] == [1, 2, 0]
    assert keras_resnet.decode_predictions(np.zeros((0, 10)), classes="cifar10") == []
    uint8 = np.array([[0, 255, 3, 0, 0, 0, 0, 0, 0, 0]], np.uint8)  # -x must not wrap around
    assert [p.name for p in keras_resnet.decode_predictions(uint8, top=2, classes="cifar10")[0]] == [
        "automobile", "bird"]


@pytest.mark.parametrize("preds, kwargs, message", [
    (np.zeros(10), {"classes": "cifar10"}, r"shape \(batch, classes\).*Received shape \(10,\)\. One image's "
                                           r"predictions\? Pass preds\[None\]"),
    (np.zeros((1, 2, 10)), {"classes": "cifar10"}, r"Received shape \(1, 2, 10\)\.$"),
    (np.array([["a"] * 10]), {"classes": "cifar10"}, "takes numbers.*dtype <U1"),
    (np.ones((1, 10), bool), {"classes": "cifar10"}, "takes numbers.*dtype bool"),
    (np.ones((1, 10), complex), {"classes": "cifar10"}, "takes numbers.*dtype complex128"),
    (np.zeros((1, 10)), {}, r"which classes 10 outputs.*only 1000.*classes='cifar10' for CIFAR-10"),
    (np.zeros((1, 7)), {}, r"which classes 7 outputs.*or the 7 names\.$"),
    (np.zeros((1, 7)), {"classes": "cifar10"}, "predictions have 7 columns, but classes='cifar10' has 10"),
    (np.zeros((1, 1000)), {"classes": "akamaster_cifar10"}, "1000 columns.*has 10 classes"),
    (np.zeros((1, 2)), {"classes": ["a", "b", "c"]}, "2 columns.*ClassList.*has 3 classes"),
    (np.zeros((1, 2)), {"classes": "nope"}, r"classes='nope' is neither a class list.*nor a preset"),
    (np.zeros((1, 2)), {"classes": ["a", "a"]}, r"distinct.*\['a'\] more than once"),
    (np.zeros((1, 2)), {"classes": ["a", 3]}, r"non-empty strings.*\[3\] among them"),
    (np.zeros((1, 2)), {"classes": {"a", "b"}}, "Received a set"),
    (np.zeros((1, 10)), {"classes": "cifar10", "top": 0}, r"`top` must be an int in \[1, 10\].*top=0"),
    (np.zeros((1, 10)), {"classes": "cifar10", "top": 11}, r"in \[1, 10\].*top=11"),
    (np.zeros((1, 10)), {"classes": "cifar10", "top": True}, "top=True"),
    (np.zeros((1, 10)), {"classes": "cifar10", "top": 2.0}, "top=2.0"),
    (np.zeros((1, 10)), {"classes": "cifar10", "nan": "skip"}, r"`nan` must be one of \('raise', 'empty'\)"),
])
def test_decode_bad_input(preds, kwargs, message):
    with pytest.raises(ValueError, match=message):
        keras_resnet.decode_predictions(preds, **kwargs)


def test_decode_nan_rows():
    preds = np.tile(np.linspace(0, 1, 10), (5, 1))
    preds[1] = np.nan  # what a NaN image gets from the model
    preds[3, 4] = np.nan
    with pytest.raises(ValueError, match=r"2 of 5 rows hold NaN \(rows 1, 3\).*nan='empty'"):
        keras_resnet.decode_predictions(preds, classes="cifar10")
    decoded = keras_resnet.decode_predictions(preds, top=1, classes="cifar10", nan="empty")
    assert decoded[1] == [] and decoded[3] == []
    assert decoded[0] == decoded[2] == decoded[4] == [(9, "truck", 1.0)]
    many = np.full((12, 10), np.nan)
    with pytest.raises(ValueError, match=r"12 of 12 rows hold NaN \(rows 0, 1, .*, 9, \.\.\.\)"):
        keras_resnet.decode_predictions(many, classes="cifar10")


def test_a_preset_model_knows_its_class_names(cifar_model, tmp_path):
    assert labels.preset_of(cifar_model) is registry.PRESETS["akamaster_cifar10"][20]
    assert labels.class_names_of(cifar_model) is class_lists.CIFAR10
    assert labels.preset_of(keras_resnet.ResNet(20)) is None
    backbone = keras_resnet.ResNet(20, weights="cifar10", include_top=False, pooling="avg")
    assert labels.preset_of(backbone).name == "akamaster_cifar10" and labels.class_names_of(backbone) is None
    # The record is the model's architecture record: a saved and loaded model keeps it.
    path = tmp_path / "cifar.keras"
    cifar_model.save(path)
    loaded = keras.saving.load_model(path)
    assert labels.preset_of(loaded) is registry.PRESETS["akamaster_cifar10"][20]
    assert labels.class_names_of(loaded) is class_lists.CIFAR10
    with pytest.raises(ValueError, match="Model 'resnet20' records no preset classes"):
        keras_resnet.decode_predictions(np.zeros((1, 10)), classes=keras_resnet.ResNet(20))


def test_export_takes_a_preset_models_class_names(cifar_model, tmp_path, monkeypatch):
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    path = serving.export(cifar_model, tmp_path / "named", endpoints=("serve",))
    loaded = tf.saved_model.load(path)  # Keep a reference: it owns the variables.
    out = loaded.serve(images)
    names = out["top_k_names"].numpy().astype(str)
    np.testing.assert_array_equal(names, np.array(CIFAR10)[out["top_k_ids"].numpy()])
    # Given names win (checked where the export's arguments are, without a second export).
    seen = []

    class Stop(Exception):
        pass

    def plan(model, class_names, *args):
        seen.append(class_names)
        raise Stop

    monkeypatch.setattr(serving, "_Plan", plan)
    with pytest.raises(Stop):
        keras_resnet.export(cifar_model, tmp_path / "given", class_names=list("abcdefghij"))
    assert seen == [list("abcdefghij")]
    assert labels.export_class_names(keras_resnet.ResNet(8)) is None
    assert labels.export_class_names(cifar_model) == list(CIFAR10)


def test_register_preset_class_names(tmp_path):
    path = tmp_path / "r8.weights.h5"
    keras_resnet.ResNet(8, classes=3).save_weights(str(path))
    preset = keras_resnet.register_preset("shapes", path, depth=8, classes=3, class_names=["disc", "square", "star"])
    assert list(preset.class_names) == ["disc", "square", "star"] and preset.class_names.key == "shapes"
    model = keras_resnet.ResNet(8, classes=3, weights="shapes")
    assert keras_resnet.decode_predictions(np.array([[0.1, 0.2, 0.7]]), top=1, classes=model) == [
        [(2, "star", pytest.approx(0.7))]]
    assert keras_resnet.decode_predictions(np.array([[0.1, 0.2, 0.7]]), top=1, classes="shapes")[0][0].name == "star"
    keras_resnet.register_preset("unnamed", path, depth=8, classes=3)
    with pytest.raises(ValueError, match=r"Preset 'unnamed' records no class names \(depths \[8\]\)"):
        keras_resnet.decode_predictions(np.zeros((1, 3)), classes="unnamed")
    cifar_file = tmp_path / "r8_10.weights.h5"
    keras_resnet.ResNet(8).save_weights(str(cifar_file))
    assert keras_resnet.register_preset("c8", cifar_file, depth=8, class_names="cifar10").class_names is class_lists.CIFAR10
    with pytest.raises(ValueError, match=r"name each of the preset's 3 classes; received 2"):
        keras_resnet.register_preset("x", path, depth=8, classes=3, class_names=["a", "b"])
    with pytest.raises(ValueError, match=r"name each of the preset's 3 classes; received 10"):
        keras_resnet.register_preset("x", path, depth=8, classes=3, class_names="cifar10")
    with pytest.raises(ValueError, match=r"class list's name \['cifar10', 'imagenet1k'\].*Received 'cifar100'"):
        keras_resnet.register_preset("x", path, depth=8, classes=3, class_names="cifar100")
    with pytest.raises(ValueError, match="more than once"):
        keras_resnet.register_preset("x", path, depth=8, classes=3, class_names=["a", "a", "b"])
    assert "x" not in registry.PRESETS
    # A JSON registry file carries them too.
    registry_file = tmp_path / "presets.json"
    registry_file.write_text(json.dumps([{"name": "from_json", "path": path.name, "depth": 8, "classes": 3,
                                          "class_names": ["disc", "square", "star"]}]))
    (loaded,) = registry.load_registry(registry_file)
    assert list(loaded.class_names) == ["disc", "square", "star"]


@pytest.mark.realdata
def test_cifar10_names_are_the_folders_a_preset_predicts(cifar_root, cifar_model):
    from PIL import Image

    folders = sorted(p.name for p in (cifar_root / "test").iterdir() if p.is_dir())
    assert tuple(folders) == CIFAR10 == tuple(class_lists.CIFAR10)
    images, truth = [], []
    for folder in folders:
        for path in sorted((cifar_root / "test" / folder).glob("*.jpg"))[:20]:
            images.append(np.asarray(Image.open(path).convert("RGB"), np.float32))
            truth.append(folder)
    x = keras_resnet.preprocess_input(np.stack(images), weights="cifar10")
    decoded = keras_resnet.decode_predictions(cifar_model.predict(x, verbose=0), top=1, classes=cifar_model)
    accuracy = np.mean([row[0].name == folder for row, folder in zip(decoded, truth)])
    # 81% on all 10,000 (the preset's recorded 18.95% error); at 200 images one binomial standard error is
    # 2.8 points, so 70% is 4 below. Names off by any swap of two classes would lose about 16 points.
    assert accuracy >= 0.70, accuracy
