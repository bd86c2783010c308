"""Fine-tune a pretrained ResNet on your own image folder.

    python examples/transfer_learning.py --data=ROOT --out=DIR --weights=imagenet
    python examples/transfer_learning.py --data=ROOT --out=DIR --weights=cifar10
    python examples/transfer_learning.py --data=ROOT --out=DIR --weights=none   # from scratch

ROOT holds `train/<class>/*.jpg` and `val/<class>/*.jpg`. The depth and the
image size default from the weights: ResNet-50 at 224x224 for ImageNet
presets, ResNet-56 at 32x32 for CIFAR-10 presets (akamaster's, shipped
with the package: no download); `--depth` and `--image_size` override
them. `--weights=none` starts from random weights (a baseline for the
pretrained runs), with the images rescaled to 0..1 unless `--preprocessing`
says otherwise; with no preset to take the net from, the image size follows
`--depth` (a CIFAR depth such as 56: 32x32), and without `--depth` it is
ResNet-50 at 224x224, which the script says when it starts. The script
1. loads the backbone with the weights and `include_top=False`, with the
   weights' own preprocessing in front of it (so raw pixels go in);
2. freezes it and trains a new head (global average pool, dropout, dense);
3. unfreezes the top stage(s) and trains on with a 10x smaller learning
   rate, BatchNorm still frozen;
4. evaluates on `val/` and saves `DIR/model.keras` (raw RGB pixels in,
   class probabilities out) and `DIR/classes.json`.

The BatchNorm pitfall. A BN layer normalises with the statistics of the
current batch while training and with its moving averages at inference.
Fine-tuning on a small dataset in training mode replaces the moving
averages learned on millions of images with noisy ones from a few batches
(and, while frozen, trains the head on batch statistics it will never see
at test time), so accuracy collapses, often right when the backbone is
unfrozen. What prevents it here is that every BN layer stays non-trainable,
also when the top stages are unfrozen: a non-trainable BN layer runs in
inference mode (its moving statistics) and keeps its statistics, scale and
offset as pretrained. Calling the backbone with `training=False` alone would
not: in Keras 3 (3.15 here) the BN layers of a nested model that are
trainable still run in training mode in `fit`, and their moving statistics
move (keras-team/keras#20285; tests/test_zoo_misuse_round3.py checks both).
"""

import argparse
import json
import os
import uuid

import keras

from keras_resnet import features as features_lib
from keras_resnet import models as models_lib
from keras_resnet import preprocessing as preprocessing_lib
from keras_resnet import registry
from keras_resnet import specs

# (depth, image size) by the family of the preset's weights.
DEFAULTS = {"imagenet": (50, 224), "cifar": (56, 32)}


def load_folder(root, image_size, batch_size, seed=0):
    """Returns (train, val, class_names) from root/train and root/val."""
    options = dict(image_size=(image_size, image_size), batch_size=batch_size, label_mode="int")
    train = keras.utils.image_dataset_from_directory(
        os.path.join(root, "train"), shuffle=True, seed=seed, **options)
    val = keras.utils.image_dataset_from_directory(
        os.path.join(root, "val"), shuffle=False, class_names=train.class_names, **options)
    return train, val, train.class_names


def build(depth, weights, classes, image_size, preprocessing=None, dropout=0.2):
    """The backbone with its preprocessing, and a new head.

    Args:
        depth: the ResNet depth of the backbone.
        weights: a preset name, a weights file, or None (from scratch).
        classes: classes of the new head.
        image_size: side of the (square) input images.
        preprocessing: a `keras_resnet.presets.MODES` key or dict;
            defaults to the preset's own, and to "rescale" (0..1) for None.
            Needed for a weights file.

    Returns:
        (model, backbone).
    """
    if preprocessing is None and weights is None:
        preprocessing = "rescale"  # from scratch: any fixed scaling; BN adapts
    if preprocessing is None:
        if not (isinstance(weights, str) and weights in registry.preset_names()):
            raise ValueError(
                "Say which `preprocessing` the weights expect: only presets "
                f"carry it. Received weights={weights!r}."
            )
        preprocessing = preprocessing_lib.mode_of(weights, depth)
    backbone = models_lib.ResNet(
        depth, weights=weights, include_top=False, input_shape=(image_size, image_size, 3))
    inputs = keras.Input((image_size, image_size, 3), name="raw_images")
    x = preprocessing_lib.Preprocessing(preprocessing, name="preprocessing")(inputs)
    # training=False asks for inference mode; what keeps BN there during fit
    # is that its layers stay non-trainable (see the module docstring).
    x = backbone(x, training=False)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs, name="transfer"), backbone


def unfreeze_top(backbone, stages):
    """Makes the last `stages` stages trainable, BN layers excepted."""
    names = list(features_lib.stage_output_names(backbone))[-stages:]
    backbone.trainable = True
    for layer in backbone.layers:
        top = any(layer.name.startswith(f"{stage}_") for stage in names)
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = top and not is_bn
    return names


def defaults(weights, depth=None, image_size=None):
    """(depth, image_size), each defaulting from the weights' family.

    Without a preset (random weights, or a weights file) the family is the
    depth's (a CIFAR depth such as 56 means 32x32), and without a depth
    either, ImageNet's (ResNet-50 at 224x224).
    """
    family = "imagenet"
    if isinstance(weights, str) and weights in registry.preset_names():
        family = registry.get_preset(weights).family
    elif depth is not None:
        family = specs.resolve_family(depth)
    default_depth, default_size = DEFAULTS[family]
    return depth or default_depth, image_size or default_size


def run(data, out, depth=None, weights="imagenet", image_size=None, preprocessing=None,
        batch_size=32, head_epochs=5, finetune_epochs=5, lr=1e-3, unfreeze_stages=1, seed=0):
    """Trains the head, then fine-tunes; returns a dict of accuracies."""
    keras.utils.set_random_seed(seed)
    chosen = depth, image_size
    depth, image_size = defaults(weights, depth, image_size)
    if None in chosen and not (isinstance(weights, str) and weights in registry.preset_names()):
        print(f"transfer_learning: weights={weights!r} is no preset to take the net from: ResNet-{depth} "
              f"at {image_size}x{image_size} (set --depth and --image_size to choose)")
    train, val, class_names = load_folder(data, image_size, batch_size, seed)
    model, backbone = build(depth, weights, len(class_names), image_size, preprocessing)

    backbone.trainable = False
    model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(train, epochs=head_epochs, verbose=2, shuffle=False)  # the dataset shuffles itself
    head_accuracy = model.evaluate(val, verbose=0)[1]

    unfrozen = unfreeze_top(backbone, unfreeze_stages)
    # Recompile: trainable flags are read at compile time.
    model.compile(keras.optimizers.Adam(lr / 10), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(train, epochs=finetune_epochs, verbose=2, shuffle=False)
    accuracy = model.evaluate(val, verbose=0)[1]

    os.makedirs(out, exist_ok=True)
    _atomic_write(out, "model.keras", model.save)
    _atomic_write(out, "classes.json", lambda p: open(p, "w").write(json.dumps(class_names)))
    return {"depth": depth, "image_size": image_size, "weights": weights,
            "head_accuracy": float(head_accuracy),
            "val_accuracy": float(accuracy), "unfrozen_stages": unfrozen, "classes": class_names}


def _atomic_write(folder, name, write):
    # Write beside the target, then rename: no half-written file is left.
    # The writer creates the file, so it gets the usual mode (0644 under
    # umask 022); mkstemp's would be 0600.
    tmp = os.path.join(folder, f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}-{name}")
    try:
        write(tmp)
        os.replace(tmp, os.path.join(folder, name))
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _weights_arg(text):
    return None if text.lower() == "none" else text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="folder with train/<class> and val/<class>")
    parser.add_argument("--out", required=True, help="where model.keras and classes.json go")
    parser.add_argument("--depth", type=int, default=None, help="default: from the weights")
    parser.add_argument("--weights", default="imagenet", type=_weights_arg,
                        help="preset name, weights file, or none (random weights)")
    parser.add_argument("--preprocessing", default=None, help="mode, for a weights file")
    parser.add_argument("--image_size", type=int, default=None, help="default: from the weights")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--head_epochs", type=int, default=5)
    parser.add_argument("--finetune_epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--unfreeze_stages", type=int, default=1)
    args = parser.parse_args(argv)
    result = run(**vars(args))
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
