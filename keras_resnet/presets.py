"""The built-in weight presets, as data.

A preset is named after where its weights come from, and each name may
hold one entry per depth. `"imagenet"` is an alias of
`"keras_applications_imagenet"`, the paper's v1 layout, so that
`ResNet(50, weights="imagenet")` means what it means in keras.applications.

No file here is our own re-upload: each preset downloads the upstream
publisher's file and converts it while loading (`keras_resnet.convert`), so
the hash that pins it is the publisher's.

- keras_applications_imagenet (50/101/152, v1, Caffe preprocessing): the
  keras.applications h5 files, pinned to the md5 hashes Keras itself pins
  (keras/src/applications/resnet.py, WEIGHTS_HASHES); Keras publishes no
  sha256 for them. keras.applications keeps them in the same cache
  (~/.keras/models), so a user who has them already downloads nothing.
- torchvision_imagenet (18, 34, and 50 in the v1.5 layout) and
  torchvision_imagenet_v2 (50, v1.5): torchvision's ImageNet weights as
  timm republishes them in safetensors on the Hugging Face Hub
  (timm/resnet{18,34,50}.tv_in1k, timm/resnet50.tv2_in1k), read without
  torch. The sha256 pins are the Hub's own Git LFS object ids, as published
  (see TIMM_SHA256 for where each was read). None could be recomputed from
  the offline machines this was written on; a wrong pin fails closed (the
  download is rejected and deleted, never loaded). resnet50.tv2_in1k's
  hash was not found published, so that preset stays unpinned: it refuses
  to download, and the error says how to pin it after checking the file
  (`register_preset`) or how to convert a local file directly
  (`keras_resnet.convert.from_torchvision`).
- cifar10: the zoo's own CIFAR-10 checkpoints register here by name once
  trained (`keras_resnet.weights.register_preset`, or a JSON registry file
  named by $KERAS_RESNET_PRESETS); none are published yet.

Reported accuracies are the publishers' ImageNet-1k validation top-1
figures (single 224 crop), not measured here.
"""

import dataclasses

KERAS_APPLICATIONS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
HF_URL = "https://huggingface.co/timm/{repo}/resolve/main/model.safetensors"

# Where a preset's file comes from, and so how it is read.
KERAS_APPLICATIONS_H5 = "keras_applications_h5"
TORCHVISION_SAFETENSORS = "torchvision_safetensors"
KERAS_RESNET = "keras_resnet"  # our own .weights.h5 / .keras files
SOURCE_FORMATS = (KERAS_APPLICATIONS_H5, TORCHVISION_SAFETENSORS, KERAS_RESNET)


# How each source normalises its input: mode -> (mean, std, bgr) in 0..255
# pixel units on RGB input. The net sees (x - mean) / std, then the channels
# reversed if bgr (`keras_resnet.preprocessing` applies it).
MODES = {
    # keras.applications ResNet50/101/152 ("caffe" in imagenet_utils).
    "caffe": ((123.68, 116.779, 103.939), (1.0, 1.0, 1.0), True),
    # torchvision and timm ImageNet weights ("torch" in imagenet_utils).
    "torch": ((0.485 * 255, 0.456 * 255, 0.406 * 255), (0.229 * 255, 0.224 * 255, 0.225 * 255), False),
    # 0..1, as keras-cv's include_rescaling.
    "rescale": ((0.0, 0.0, 0.0), (255.0, 255.0, 255.0), False),
    # Raw pixels: weights whose model does its own preprocessing.
    "none": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), False),
}


def preprocessing_parameters(mode):
    """(mean, std, bgr) for a `MODES` key or a {"mean", "std"[, "bgr"]} dict.

    Raises:
        ValueError: for anything else, naming it.
    """
    if isinstance(mode, dict):
        if set(mode) - {"mean", "std", "bgr"} or "mean" not in mode:
            raise ValueError(
                "A preprocessing dict has keys 'mean', 'std' (RGB, pixel "
                f"units 0..255) and optionally 'bgr'. Received {mode!r}."
            )
        return tuple(mode["mean"]), tuple(mode.get("std", (1.0, 1.0, 1.0))), bool(mode.get("bgr", False))
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(
            f"Preprocessing mode must be one of {sorted(MODES)} or a dict "
            f"with 'mean' and 'std'. Received {mode!r}."
        )
    return MODES[mode]


@dataclasses.dataclass(frozen=True)
class Preset:
    """One downloadable (or local) set of weights for one depth.

    Attributes:
        name: the preset name, after its source.
        depth: the depth it fits.
        family: "imagenet" or "cifar".
        variant: bottleneck stride placement it was trained with, "v1" or
            "v1.5" (basic-block nets: "v1").
        shortcut: the shortcut option it was trained with ("A", "B", "C").
        classes: classes of its classifier.
        preprocessing: a `keras_resnet.preprocessing.MODES` key, or a dict
            {"mean", "std"} in pixel units.
        source_format: how the file is read (`SOURCE_FORMATS`).
        url: where to download it; None for a local file.
        file_hash: the pinned sha256 (or md5, for keras.applications' files),
            or None if not pinned: an unpinned download is refused.
        fname: the file's name in the Keras cache.
        url_no_top: optional smaller file without the classifier, with
            `file_hash_no_top`, used for `include_top=False`.
        path: a local file, for presets registered from disk.
        top1: the reported top-1 accuracy (fraction), or None.
        accuracy_source: who reported `top1`, on what.
        recipe: the training recipe, for our own checkpoints.
    """

    name: str
    depth: int
    family: str
    variant: str
    shortcut: str
    classes: int
    preprocessing: object
    source_format: str
    url: str = None
    file_hash: str = None
    fname: str = None
    url_no_top: str = None
    file_hash_no_top: str = None
    path: str = None
    top1: float = None
    accuracy_source: str = None
    recipe: str = None


def _keras_applications(depth, md5_top, md5_no_top, top1):
    return Preset(
        name="keras_applications_imagenet",
        depth=depth,
        family="imagenet",
        variant="v1",
        shortcut="B",
        classes=1000,
        preprocessing="caffe",
        source_format=KERAS_APPLICATIONS_H5,
        url=f"{KERAS_APPLICATIONS_URL}resnet{depth}_weights_tf_dim_ordering_tf_kernels.h5",
        file_hash=md5_top,
        url_no_top=f"{KERAS_APPLICATIONS_URL}resnet{depth}_weights_tf_dim_ordering_tf_kernels_notop.h5",
        file_hash_no_top=md5_no_top,
        top1=top1,
        accuracy_source="keras.io/api/applications table (ImageNet val, 224 crop)",
    )


# sha256 of timm's model.safetensors (the Git LFS oid), by repo, and where
# it was read. A repo's "main" may move on; the pin then rejects the new file
# rather than load something unverified.
TIMM_SHA256 = {
    # huggingface.co/timm/resnet18.tv_in1k/blob/main/model.safetensors
    # ("Git LFS Details, SHA256"), 46,807,446 bytes; the same pin appears in
    # two independent public checkpoint lists.
    "resnet18.tv_in1k": "694f673df6520a3158624e8a89af086f59923ee4cd7436fe5bc3bc71d295ad81",
    # One public checkpoint list (with the size, 87,278,522 bytes); not
    # seen on the Hub page itself. Least certain of the three.
    "resnet34.tv_in1k": "0bb82595a564991a9d424708b33f5d843f5aaed7f6c0886ff10849ff97022235",
    # huggingface.co/timm/resnet50.tv_in1k/blob/main/model.safetensors,
    # 102,469,840 bytes; the same pin appears in public checkpoint lists.
    "resnet50.tv_in1k": "5d061a3c593d795bfe682d9b152bafbcf550579873492def3515b46db1189888",
}


def _torchvision(name, repo, depth, variant, top1):
    return Preset(
        name=name,
        depth=depth,
        family="imagenet",
        variant=variant,
        shortcut="B",
        classes=1000,
        preprocessing="torch",
        source_format=TORCHVISION_SAFETENSORS,
        url=HF_URL.format(repo=repo),
        file_hash=TIMM_SHA256.get(repo),  # None: unpinned, see the docstring
        fname=f"{repo}.safetensors",
        top1=top1,
        accuracy_source="torchvision model docs (ImageNet val, acc@1)",
    )


BUILTIN = {
    "keras_applications_imagenet": {
        50: _keras_applications(50, "2cb95161c43110f7111970584f804107", "4d473c1dd8becc155b73f8504c6f6626", 0.749),
        101: _keras_applications(101, "f1aeb4b969a6efcfb50fad2f0c20cfc5", "88cf7a10940856eca736dc7b7e228a21", 0.764),
        152: _keras_applications(152, "100835be76be38e30d865e96f2aaae62", "ee4c566cf9a93f14d82f913c2dc6dd0c", 0.766),
    },
    "torchvision_imagenet": {
        18: _torchvision("torchvision_imagenet", "resnet18.tv_in1k", 18, "v1", 0.69758),
        34: _torchvision("torchvision_imagenet", "resnet34.tv_in1k", 34, "v1", 0.73314),
        50: _torchvision("torchvision_imagenet", "resnet50.tv_in1k", 50, "v1.5", 0.76130),
    },
    "torchvision_imagenet_v2": {
        50: _torchvision("torchvision_imagenet_v2", "resnet50.tv2_in1k", 50, "v1.5", 0.80858),
    },
    # Filled by register_preset once the zoo has trained CIFAR-10 weights.
    "cifar10": {},
}

ALIASES = {"imagenet": "keras_applications_imagenet"}

# Shown when a name has no entry yet, per name.
EMPTY_REASONS = {
    "cifar10": (
        "No trained CIFAR-10 weights are published yet. Train them with "
        "`python -m zoo.train --recipe=cifar10_resnet20 --workdir=DIR`, then "
        "register them: `keras_resnet.weights.register_preset('cifar10', "
        "'DIR/model.keras', depth=20, ...)`, or list them in a JSON file "
        "named by $KERAS_RESNET_PRESETS (see keras_resnet.weights.load_registry)."
    ),
}
