"""Stage feature maps of a built ResNet: the backbone of a detector or a
segmenter (the paper's Sec. 7 puts Faster R-CNN on conv2_x..conv5_x)."""

import keras

from keras_resnet import architecture
from keras_resnet.model_classes import recursion_headroom


def stage_output_names(model):
    """Names of the layers that output each stage, e.g. `conv2_block3_out`.

    Args:
        model: a keras_resnet net (what `ResNet` returns).

    Returns:
        A dict from stage name ("conv2", ..., "conv5") to layer name, in
        network order. These are the feature maps a detection backbone uses
        (the paper's Sec. 7 puts Faster R-CNN on conv2_x..conv5_x).
    """
    arch = architecture.architecture_of(model)
    if arch.net is not model:
        raise ValueError(
            f"Model {model.name!r} holds the keras_resnet net {arch.net.name!r} as a nested "
            "model, so its stage outputs are not layers of the model; pass that net."
        )
    return arch.stage_outputs()


def feature_extractor(model, stages=None):
    """A model from `model`'s inputs to a dict of stage feature maps.

    Args:
        model: a model built by `ResNet(...)`.
        stages: a list of stage names to return, in the order given
            ("conv2" .. "conv5" for ImageNet, "conv2" .. "conv4" for CIFAR);
            all by default. One stage is a list of one, `["conv3"]`.

    Returns:
        A functional `keras.Model` sharing `model`'s layers and weights,
        whose output is `{stage: feature map}`.
    """
    names = stage_output_names(model)
    if stages is None:
        stages = list(names)
    elif isinstance(stages, (str, bytes)) or not isinstance(stages, (list, tuple)):
        # A string is a sequence too: "conv3" would be five stage names.
        raise ValueError(
            f"`stages` must be a list of stage names among {list(names)}. Received "
            f"stages={stages!r:.100}; for one stage, pass [{stages!r:.100}]."
        )
    stages = list(stages)
    if not stages:
        raise ValueError(
            f"`stages` must name at least one stage among {list(names)}. Received stages=[]."
        )
    unknown = [s for s in stages if not isinstance(s, str) or s not in names]
    if unknown:
        raise ValueError(
            f"`stages` must be among {list(names)}. Received stages={stages!r}."
        )
    if len(set(stages)) != len(stages):
        raise ValueError(f"`stages` must name each stage once. Received stages={stages!r}.")
    outputs = {s: model.get_layer(names[s]).output for s in stages}
    with recursion_headroom():
        return keras.Model(model.input, outputs, name=f"{model.name}_features")
