"""`ResNet(...)`: the model factory, its argument checks, named constructors.

What `ResNet`'s arguments mean, in more words than its docstring has room for:

- The family follows the depth. 18, 34, 50, 101, 152 (and 200) are the
  ImageNet nets of Table 1: a 7x7/2 stem, a 3x3/2 max-pool, four stages
  conv2_x..conv5_x. Any other depth 6n+2 is the CIFAR net of Sec. 4.2: a
  3x3 stem with 16 filters and three stages of n basic blocks with 16, 32
  and 64 filters. The CIFAR nets of depth 50, 152 and 200 need
  `family="cifar"`. Both end with global average pooling and a dense
  classifier.
- `variant`: "v1" strides a bottleneck in its first 1x1 conv, as the
  paper's released model, keras.applications and keras-cv do; "v1.5" in
  its 3x3 conv, as torchvision, NVIDIA and keras-hub do: slightly more
  accurate, about 12% more FLOPs at depth 50, and its weights are not
  interchangeable with v1's. Basic-block nets (18, 34, CIFAR) are the same
  in both.
- `weights`: a `.keras` file must come from the same architecture (family,
  depth, shortcut, variant, strides: read from its architecture record, or
  from its layer names for older files). A `.weights.h5` file is checked by
  weight shapes and by whether it has the ResNet's additions (so a plain
  net's file is refused by its ResNet and vice versa), but it cannot tell
  v1 from v1.5. A model built with a preset and without
  `include_preprocessing=True` refuses input no preprocessed image has.
- `data_format`: TensorFlow's CPU kernels run only channels_last
  convolutions; channels_first runs on GPUs, and on any device under the
  JAX and PyTorch backends.
- `weight_decay` is added as `keras.regularizers.L2(weight_decay / 2)` on
  every conv and dense kernel, so the gradient gains `weight_decay * w`:
  exactly Caffe's and PyTorch's coupled `weight_decay`, momentum included.
  (The `weight_decay` argument of Keras optimizers is decoupled,
  AdamW-style, and is not the paper's.) BN parameters and biases are not
  decayed.
- `include_preprocessing` puts a `Preprocessing` layer right after the
  input.
"""

import dataclasses

import keras
from keras import layers

from keras_resnet import architecture
from keras_resnet import blocks
from keras_resnet import fast_build
from keras_resnet import model_classes
from keras_resnet import names
from keras_resnet import preprocessing
from keras_resnet import specs
from keras_resnet import weights as weights_lib

POOLINGS = architecture.POOLINGS
# Keras builds a functional graph with one recursive Python call per layer on
# the longest path (keras/src/ops/function.py, `_build_map_helper`), and a
# ResNet's longest path has about 2 layers per block. Past this many weighted
# layers that walk would hit Python's default recursion limit of 1000.
DEEP_GRAPH_DEPTH = 400


def ResNet(
    depth,
    shortcut=None,
    plain=False,
    *,
    family=None,
    variant="v1",
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=None,
    classifier_activation="softmax",
    data_format=None,
    weight_decay=None,
    include_preprocessing=False,
    name=None,
):
    """Builds a network of He et al. (2015) as a functional `keras.Model`.

    The family follows the depth: 18, 34, 50, 101, 152 (and 200) are the
    ImageNet nets of Table 1, any other depth 6n+2 the CIFAR net of Sec.
    4.2 (the module docstring says more about each argument).

    Args:
        depth: number of weighted layers, as the paper counts them.
        shortcut: "A" (identity, zero-padded where dimensions grow), "B"
            (1x1 projections where dimensions change) or "C" (projections
            everywhere); defaults to "A" for CIFAR, "B" for ImageNet. Must
            be None when `plain=True`.
        plain: build the plain baseline: the same net with no shortcuts.
        family: None (follow the depth), "cifar" or "imagenet".
        variant: where a bottleneck block strides: "v1" (default) in the
            first 1x1 conv, "v1.5" in the 3x3 conv (torchvision, keras-hub).
        include_top: whether to end with the pooling + dense classifier.
        weights: None (random He-normal init), a `.weights.h5` or `.keras`
            file saved from the same architecture (checked), or a preset
            name (see `keras_resnet.weights`).
        input_tensor: optional Keras tensor to use as the model's input.
        input_shape: shape of one image, (H, W, C) for channels_last; H and
            W may be None (any size), else at least the net's total stride
            (4 CIFAR, 32 ImageNet). Defaults to 32x32x3 or 224x224x3.
        pooling: with `include_top=False`: None for the last stage's feature
            map, "avg" or "max" for its global pooling; with the top, the
            pooling before the classifier ("avg", the paper's, or "max").
        classes: number of classes; defaults to 10 (CIFAR) or 1000.
        classifier_activation: "softmax" by default; None returns logits.
            The classifier computes in float32 under mixed precision too.
        data_format: "channels_last" (default, from Keras's config) or
            "channels_first" (not on TensorFlow's CPU kernels).
        weight_decay: None, or the paper's SGD weight decay (1e-4), as a
            coupled L2 on every conv and dense kernel.
        include_preprocessing: put the preprocessing the `weights` were
            trained with inside the model, so that it takes raw RGB pixels
            0..255. Needs a preset, or a `.keras` file holding its
            preprocessing in front of its net (a zoo run's model.keras).
        name: model name; defaults to e.g. "resnet56" or "plain34".

    Returns:
        A `ResNetModel` (a `DeepResNet` above 400 layers): a functional
        model whose `predict` checks its images, and whose config carries
        its architecture record (`keras_resnet.architecture_of` reads it).
        Each stage's output is the layer `"{stage}_block{last}_out"`.

    Raises:
        ValueError: for any argument out of range, naming the value received
            and what is valid.
    """
    net = _checked_net(
        depth, shortcut, plain, family, variant, include_top, pooling, classes,
        classifier_activation, data_format, weight_decay)
    include_preprocessing = specs.check_bool("include_preprocessing", include_preprocessing)
    weights_path = weights_lib.resolve(weights, spec=net.spec, variant=net.variant)
    arch = _architecture(net, weights, weights_path, include_preprocessing)
    model = _build_model(net, arch, input_tensor, input_shape, name)
    if weights_path is not None:
        weights_lib.load_into(model, weights_path)
    return model


@dataclasses.dataclass(frozen=True)
class _Net:
    """`ResNet`'s arguments that shape the graph, checked."""

    spec: specs.Spec
    shortcut: object
    plain: bool
    variant: str
    include_top: bool
    pooling: object
    classes: int
    classifier_activation: object
    options: blocks.LayerOptions


def _checked_net(depth, shortcut, plain, family, variant, include_top, pooling, classes,
                 classifier_activation, data_format, weight_decay):
    """Checks the arguments that shape the graph, each refused by name."""
    spec = specs.get_spec(depth, family)
    defaults = specs.DEFAULTS[spec.family]
    plain = specs.check_bool("plain", plain)
    shortcut = _check_shortcut(shortcut, plain, defaults.shortcut)
    if variant not in blocks.VARIANTS:
        raise ValueError(
            f"`variant` must be one of {blocks.VARIANTS}. Received variant={variant!r}."
        )
    include_top = specs.check_bool("include_top", include_top)
    if pooling not in POOLINGS:
        raise ValueError(
            f"`pooling` must be one of {POOLINGS}. Received pooling={pooling!r}."
        )
    classes = specs.integer_or_same(defaults.classes if classes is None else classes)
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise ValueError(
            f"`classes` must be a positive int. Received classes={classes!r}."
        )
    if include_top:
        _check_activation(classifier_activation)
    options = blocks.LayerOptions(
        data_format=specs.check_data_format(data_format), kernel_regularizer=_regularizer(weight_decay))
    return _Net(spec, shortcut, plain, variant, include_top, pooling, classes, classifier_activation, options)


def _check_activation(classifier_activation):
    try:
        keras.activations.get(classifier_activation)
    except ValueError as error:
        raise ValueError(
            "`classifier_activation` must be None or a Keras activation. "
            f"Received classifier_activation={classifier_activation!r}."
        ) from error


def _architecture(net, weights, weights_path, include_preprocessing):
    """The net's `Architecture`, with the input it takes: the record the model carries."""
    preprocessing_mode = (
        weights_lib.preprocessing_of(weights_path, weights) if include_preprocessing else None)
    preset = weights_path.preset if isinstance(weights_path, weights_lib.PresetWeights) else None
    return architecture.Architecture(
        family=net.spec.family,
        depth=net.spec.depth,
        plain=net.plain,
        shortcut=net.shortcut,
        variant=net.variant if net.spec.block == specs.BOTTLENECK else None,
        strides={},
        classes=net.classes if net.include_top else None,
        include_top=net.include_top,
        pooling=net.pooling or ("avg" if net.include_top else None),
        data_format=net.options.data_format,
        preprocessing=preprocessing_mode,
        weights=weights if preset is not None else None,
        input_preprocessing=preset.preprocessing if preset is not None and not include_preprocessing else None,
    )


def _build_model(net, arch, input_tensor, input_shape, name):
    """Builds the graph: input, preprocessing, stem, stages, head."""
    defaults = specs.DEFAULTS[net.spec.family]
    if name is None:
        name = _default_name(net.spec, net.shortcut, net.plain, net.variant, defaults.shortcut)
    data_format = net.options.data_format
    # fast_build explains this scope and the initializer swap after it.
    with fast_build.gc_paused(), fast_build.variable_scope():
        inputs, x = _inputs(input_tensor, input_shape, net.spec, defaults.size, data_format)
        if arch.preprocessing is not None:
            x = preprocessing.Preprocessing(
                arch.preprocessing, data_format=data_format, name=names.PREPROCESSING
            )(x)
        x = blocks.apply_stem(x, net.spec.family, net.options)
        for stage in net.spec.stages:
            x = blocks.apply_stage(x, stage, net.spec.block, net.shortcut, net.options, net.variant)
        x = _head(x, net)
        model_class = model_classes.DeepResNet if net.spec.depth > DEEP_GRAPH_DEPTH else model_classes.ResNetModel
        model = model_class(inputs, x, name=name, architecture=_record(arch))
    fast_build.restore_initializers(model)
    return model


def _record(arch):
    """The record the model carries: self-contained (a mean file's values, not its name)."""
    record = arch.to_config()
    for field in ("preprocessing", "input_preprocessing"):
        if record[field] is not None:
            record[field] = preprocessing.portable_mode(record[field])
    return record


def _head(x, net):
    """The global pooling and the classifier, as `include_top` and `pooling` say."""
    if net.include_top:
        x = _global_pool(net.pooling or "avg", net.options.data_format)(x)
        return layers.Dense(
            net.classes,
            activation=net.classifier_activation,
            kernel_initializer=fast_build.GlorotUniform(),
            kernel_regularizer=net.options.kernel_regularizer,
            # Logits and probabilities stay float32 under mixed precision.
            dtype=keras.config.dtype_policy().variable_dtype,
            name=names.CLASSIFIER,
        )(x)
    if net.pooling is not None:
        x = _global_pool(net.pooling, net.options.data_format)(x)
    return x


def _check_shortcut(shortcut, plain, default):
    if plain:
        if shortcut is not None:
            raise ValueError(
                "A plain net has no shortcuts, so `shortcut` must be None "
                f"when plain=True. Received shortcut={shortcut!r}."
            )
        return None
    if shortcut is None:
        return default
    if shortcut not in blocks.SHORTCUTS:
        hint = ""
        if isinstance(shortcut, str) and shortcut.upper() in blocks.SHORTCUTS:
            hint = f" (the paper's upper-case option names: did you mean {shortcut.upper()!r}?)"
        raise ValueError(
            f"`shortcut` must be one of {blocks.SHORTCUTS}, or None for the "
            f"family's default{hint}. Received shortcut={shortcut!r}."
        )
    return shortcut


def _regularizer(weight_decay):
    if weight_decay is None:
        return None
    decay = specs.real(weight_decay)  # numpy floats too; NaN would make every loss NaN
    if decay is None or decay < 0:
        raise ValueError(
            "`weight_decay` must be None or a finite float >= 0 (the paper uses 1e-4). "
            f"Received weight_decay={weight_decay!r}."
        )
    return keras.regularizers.L2(decay / 2) if decay else None


def check_input_shape(input_shape, spec, data_format):
    """Checks one image's shape against the net; returns it as a tuple."""
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(
            "`input_shape` must be a tuple of 3 dims, (H, W, C) for "
            "channels_last or (C, H, W) for channels_first. "
            f"Received input_shape={input_shape!r}."
        )
    # numpy ints are ints too.
    input_shape = tuple(specs.integer_or_same(d) for d in input_shape)
    if data_format == "channels_last":
        height, width, channels = input_shape
    else:
        channels, height, width = input_shape
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(
            f"The channel dim of `input_shape` must be a positive int "
            f"({data_format}). Received input_shape={tuple(input_shape)!r}."
        )
    minimum = spec.total_stride
    for dim in (height, width):
        if dim is None:
            continue
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < minimum:
            raise ValueError(
                f"`input_shape`={tuple(input_shape)!r} is too small or not "
                f"an int: the {spec.family} ResNets downsample by "
                f"{minimum}, so height and width must be ints >= {minimum}, "
                "or None for any size."
            )
    return tuple(input_shape)


def _inputs(input_tensor, input_shape, spec, size, data_format):
    """Returns (model inputs, first tensor) from input_tensor/input_shape."""
    if input_tensor is not None:
        if not keras.backend.is_keras_tensor(input_tensor):
            raise ValueError(
                "`input_tensor` must be a Keras tensor, e.g. from "
                f"keras.Input(...). Received input_tensor={input_tensor!r}."
            )
        tensor_shape = tuple(input_tensor.shape[1:])
        if input_shape is not None and check_input_shape(input_shape, spec, data_format) != tensor_shape:
            raise ValueError(
                f"`input_shape`={tuple(input_shape)!r} contradicts the shape "
                f"of `input_tensor`, {tensor_shape!r}. Pass one of them."
            )
        check_input_shape(tensor_shape, spec, data_format)
        return keras.utils.get_source_inputs(input_tensor), input_tensor
    if input_shape is None:
        input_shape = (size, size, 3) if data_format == "channels_last" else (3, size, size)
    shape = check_input_shape(input_shape, spec, data_format)
    inputs = keras.Input(shape=shape, name=names.INPUT)
    return inputs, inputs


def _global_pool(pooling, data_format):
    cls = layers.GlobalAveragePooling2D if pooling == "avg" else layers.GlobalMaxPooling2D
    return cls(data_format=data_format, name=names.POOLS[pooling])


def _default_name(spec, shortcut, plain, variant, default_shortcut):
    name = f"{'plain' if plain else 'resnet'}{spec.depth}"
    if shortcut is not None and shortcut != default_shortcut:
        name += f"_{shortcut.lower()}"
    if spec.block == specs.BOTTLENECK and variant == "v1.5":
        name += "_v1_5"
    if spec.family == specs.CIFAR and spec.depth in specs.IMAGENET_BLOCKS:
        name += "_cifar"
    return name


# Named constructors: every network the paper reports. Each takes the
# keyword arguments of `ResNet`.


def resnet20(**kwargs):
    """ResNet-20 for CIFAR (n=3): 0.27M parameters, 8.75% error (Table 6).

    Args:
        **kwargs: keyword arguments of `ResNet` (`weights`, `input_shape`,
            `classes`, `include_top`, ...).

    Returns:
        The model `ResNet(20, **kwargs)` returns.
    """
    return ResNet(20, **kwargs)


def resnet32(**kwargs):
    """ResNet-32 for CIFAR (n=5): 0.46M parameters, 7.51% error (Table 6).

    Args:
        **kwargs: keyword arguments of `ResNet` (`weights`, `input_shape`,
            `classes`, `include_top`, ...).

    Returns:
        The model `ResNet(32, **kwargs)` returns.
    """
    return ResNet(32, **kwargs)


def resnet44(**kwargs):
    """ResNet-44 for CIFAR (n=7): 0.66M parameters, 7.17% error (Table 6).

    Args:
        **kwargs: keyword arguments of `ResNet` (`weights`, `input_shape`,
            `classes`, `include_top`, ...).

    Returns:
        The model `ResNet(44, **kwargs)` returns.
    """
    return ResNet(44, **kwargs)


def resnet56(**kwargs):
    """ResNet-56 for CIFAR (n=9): 0.85M parameters, 6.97% error (Table 6).

    Args:
        **kwargs: keyword arguments of `ResNet` (`weights`, `input_shape`,
            `classes`, `include_top`, ...).

    Returns:
        The model `ResNet(56, **kwargs)` returns.
    """
    return ResNet(56, **kwargs)


def resnet110(**kwargs):
    """ResNet-110 for CIFAR (n=18): 1.7M parameters, 6.43% error (Table 6).

    Args:
        **kwargs: keyword arguments of `ResNet` (`weights`, `input_shape`,
            `classes`, `include_top`, ...).

    Returns:
        The model `ResNet(110, **kwargs)` returns.
    """
    return ResNet(110, **kwargs)


def resnet1202(**kwargs):
    """ResNet-1202 for CIFAR (n=200): 19.4M parameters, 7.93% error.

    Args:
        **kwargs: keyword arguments of `ResNet` (`weights`, `input_shape`,
            `classes`, `include_top`, ...).

    Returns:
        The model `ResNet(1202, **kwargs)` returns.
    """
    return ResNet(1202, **kwargs)


def resnet18(**kwargs):
    """ResNet-18 for ImageNet: basic blocks 2,2,2,2; 1.8 GFLOPs (Table 1).

    Args:
        **kwargs: keyword arguments of `ResNet` (`weights`, `input_shape`,
            `classes`, `include_top`, ...).

    Returns:
        The model `ResNet(18, **kwargs)` returns.
    """
    return ResNet(18, **kwargs)


def resnet34(**kwargs):
    """ResNet-34 for ImageNet: basic blocks 3,4,6,3; 3.6 GFLOPs (Table 1).

    Args:
        **kwargs: keyword arguments of `ResNet` (`weights`, `input_shape`,
            `classes`, `include_top`, ...).

    Returns:
        The model `ResNet(34, **kwargs)` returns.
    """
    return ResNet(34, **kwargs)


def resnet50(**kwargs):
    """ResNet-50 for ImageNet: bottlenecks 3,4,6,3; 3.8 GFLOPs (Table 1).

    Args:
        **kwargs: keyword arguments of `ResNet` (`weights`, `input_shape`,
            `classes`, `include_top`, ...).

    Returns:
        The model `ResNet(50, **kwargs)` returns.
    """
    return ResNet(50, **kwargs)


def resnet101(**kwargs):
    """ResNet-101 for ImageNet: bottlenecks 3,4,23,3; 7.6 GFLOPs (Table 1).

    Args:
        **kwargs: keyword arguments of `ResNet` (`weights`, `input_shape`,
            `classes`, `include_top`, ...).

    Returns:
        The model `ResNet(101, **kwargs)` returns.
    """
    return ResNet(101, **kwargs)


def resnet152(**kwargs):
    """ResNet-152 for ImageNet: bottlenecks 3,8,36,3; 11.3 GFLOPs (Table 1).

    Args:
        **kwargs: keyword arguments of `ResNet` (`weights`, `input_shape`,
            `classes`, `include_top`, ...).

    Returns:
        The model `ResNet(152, **kwargs)` returns.
    """
    return ResNet(152, **kwargs)


def resnet200(**kwargs):
    """ResNet-200 for ImageNet: bottlenecks 3,24,36,3 (not in this paper).

    Args:
        **kwargs: keyword arguments of `ResNet` (`weights`, `input_shape`,
            `classes`, `include_top`, ...).

    Returns:
        The model `ResNet(200, **kwargs)` returns.
    """
    return ResNet(200, **kwargs)


def plain20(**kwargs):
    """Plain-20 for CIFAR: ResNet-20 without shortcuts (Fig. 6, left).

    Args:
        **kwargs: keyword arguments of `ResNet` (`weights`, `input_shape`,
            `classes`, `include_top`, ...).

    Returns:
        The model `ResNet(20, plain=True, **kwargs)` returns.
    """
    return ResNet(20, plain=True, **kwargs)


def plain32(**kwargs):
    """Plain-32 for CIFAR: ResNet-32 without shortcuts (Fig. 6, left).

    Args:
        **kwargs: keyword arguments of `ResNet` (`weights`, `input_shape`,
            `classes`, `include_top`, ...).

    Returns:
        The model `ResNet(32, plain=True, **kwargs)` returns.
    """
    return ResNet(32, plain=True, **kwargs)


def plain44(**kwargs):
    """Plain-44 for CIFAR: ResNet-44 without shortcuts (Fig. 6, left).

    Args:
        **kwargs: keyword arguments of `ResNet` (`weights`, `input_shape`,
            `classes`, `include_top`, ...).

    Returns:
        The model `ResNet(44, plain=True, **kwargs)` returns.
    """
    return ResNet(44, plain=True, **kwargs)


def plain56(**kwargs):
    """Plain-56 for CIFAR: ResNet-56 without shortcuts (Fig. 6, left).

    Args:
        **kwargs: keyword arguments of `ResNet` (`weights`, `input_shape`,
            `classes`, `include_top`, ...).

    Returns:
        The model `ResNet(56, plain=True, **kwargs)` returns.
    """
    return ResNet(56, plain=True, **kwargs)


def plain110(**kwargs):
    """Plain-110 for CIFAR: ResNet-110 without shortcuts (Sec. 4.2).

    Args:
        **kwargs: keyword arguments of `ResNet` (`weights`, `input_shape`,
            `classes`, `include_top`, ...).

    Returns:
        The model `ResNet(110, plain=True, **kwargs)` returns.
    """
    return ResNet(110, plain=True, **kwargs)


def plain18(**kwargs):
    """Plain-18 for ImageNet: 27.94% top-1 error (Table 2).

    Args:
        **kwargs: keyword arguments of `ResNet` (`weights`, `input_shape`,
            `classes`, `include_top`, ...).

    Returns:
        The model `ResNet(18, plain=True, **kwargs)` returns.
    """
    return ResNet(18, plain=True, **kwargs)


def plain34(**kwargs):
    """Plain-34 for ImageNet: 28.54% top-1 error (Table 2), worse than 18.

    Args:
        **kwargs: keyword arguments of `ResNet` (`weights`, `input_shape`,
            `classes`, `include_top`, ...).

    Returns:
        The model `ResNet(34, plain=True, **kwargs)` returns.
    """
    return ResNet(34, plain=True, **kwargs)
