"""The recipe's network with its preprocessing inside, and the model that trains it.

The saved model takes raw RGB pixels 0..255 (float or uint8): the first
layer subtracts the training split's per-pixel mean, so
`model.predict(raw_images)` needs no extra step. It ends in the softmax.

Training computes the loss from the logits (`training_model`): Keras's
crossentropy on probabilities is exact only on TensorFlow, which finds the
softmax's input and takes its log-softmax. On JAX and PyTorch it clips the
probabilities to [1e-7, 1 - 1e-7] and takes their log, so an image whose
true class has a probability below 1e-7 contributes no gradient at all; a
class pushed below that on all its images early in training is never
learned again (the digits demo lost whole classes that way under JAX).
"""

import keras
import numpy as np
from keras import ops

import keras_resnet
from keras_resnet import names
from zoo import schedules

MEAN_LAYER = "per_pixel_mean"


def build(recipe, mean, input_shape=None):
    """Builds the recipe's ResNet/plain net behind a mean-subtraction layer.

    Args:
        recipe: the `Recipe`.
        mean: (H, W, 3) per-pixel mean, or (3,) per-channel mean (needed for
            inputs of any size, e.g. fully-convolutional testing).
        input_shape: (H, W, 3); defaults to the recipe's crop size. H and W
            may be None with a per-channel mean.
    """
    size = recipe.image_size
    input_shape = input_shape or (size, size, 3)
    mean = np.asarray(mean, np.float32)
    inputs = keras.Input(input_shape, name="pixels")
    # Normalization with unit variance is exactly a (saved) mean subtraction.
    x = keras.layers.Normalization(
        axis=-1 if mean.ndim == 1 else (1, 2, 3),
        mean=mean,
        variance=np.ones_like(mean),
        name=MEAN_LAYER,
    )(inputs)
    net = keras_resnet.ResNet(
        recipe.depth,
        shortcut=recipe.shortcut,
        plain=recipe.plain,
        family=recipe.family,
        input_shape=input_shape,
        classes=recipe.classes,
        weight_decay=recipe.weight_decay or None,
    )
    return keras.Model(inputs, net(x), name=f"{recipe.name}_model")


def build_training(recipe, mean):
    """(model, train_model, lr schedule): what every training loop trains.

    `model` is `build(recipe, mean)`, the one that is saved; `train_model`
    its `training_model`, compiled by `compile_model` (SGD on the
    recipe's schedule, the loss on the logits). Under a tf.distribute
    strategy, call it inside `strategy.scope()`.
    """
    model = build(recipe, mean)
    train_model = training_model(model)
    schedule = compile_model(train_model, recipe)
    return model, train_model, schedule


def compile_model(model, recipe):
    """SGD with momentum on the recipe's step schedule; returns the schedule.

    `model` outputs logits (`zoo.model.training_model`): the loss is the
    log-softmax crossentropy on every backend. Weight decay is in the model
    (coupled L2 on kernels), not the optimizer.
    """
    schedule = schedules.from_recipe(recipe)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=schedule, momentum=recipe.momentum),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        run_eagerly=recipe.run_eagerly,
    )
    return schedule


def training_model(model):
    """The model that trains `model`: the same layers and weights, logits out.

    Raw pixels -> the mean layer -> the net up to its classifier -> the
    classifier's matmul and bias without the softmax. Train it with
    `from_logits=True` (`compile_model`); `model` (softmax out)
    is what gets saved. Every backend trains this same model, so its
    checkpoints are the same files on each.
    """
    mean_layer = model.get_layer(MEAN_LAYER)
    net = keras_resnet.architecture_of(model).net
    classifier = net.get_layer(names.CLASSIFIER)
    with keras_resnet.recursion_headroom():  # ResNet-1202's graph is deep.
        body = keras.Model(net.inputs, classifier.input, name=f"{net.name}_body")
        inputs = keras.Input(model.input_shape[1:], name="pixels")
        centred = WeightMean.of_normalization(mean_layer, name=MEAN_LAYER)(inputs)
        logits = ClassifierLogits(classifier, name="logits")(body(centred))
        return keras.Model(inputs, logits, name=f"{model.name}_train")


@keras.saving.register_keras_serializable(package="zoo")
class WeightMean(keras.layers.Layer):
    """The saved model's mean subtraction, with the mean held as a weight.

    The saved model's `Normalization` layer keeps its mean as a constant of
    the layer. The training model subtracts the same mean, in the same dtype,
    from a non-trainable weight, so that the mean is part of the model's
    state: `zoo.seeds` runs one replica's `train_step` on K replicas'
    stacked states, and a constant would give every replica the first
    one's mean; and a checkpoint holds it. The result is bit for bit the
    `Normalization`'s: it divides x - mean by max(sqrt(1), eps) = 1.

    Args:
        mean: the mean to subtract, (H, W, 3) or (3,) (the saved model's
            mean layer's: `of_normalization`).
    """

    def __init__(self, mean, **kwargs):
        super().__init__(**kwargs)
        self._initial = np.asarray(mean, np.float32)

    @classmethod
    def of_normalization(cls, normalization, **kwargs):
        """The `WeightMean` of a built unit-variance `Normalization` (its mean, its dtype policy)."""
        mean = np.asarray(keras.ops.convert_to_numpy(normalization.mean), np.float32)
        return cls(mean, dtype=normalization.dtype_policy, **kwargs)

    def build(self, input_shape):
        self.mean = self.add_weight(
            name="mean", shape=self._initial.shape, initializer="zeros", trainable=False
        )
        self.mean.assign(self._initial)

    def call(self, pixels):
        pixels = ops.convert_to_tensor(pixels, dtype=self.compute_dtype)
        return ops.subtract(pixels, ops.cast(self.mean, self.compute_dtype))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        # The mean as it was given; a built layer's weight holds the same.
        return {**super().get_config(), "mean": self._initial.tolist()}


@keras.saving.register_keras_serializable(package="zoo")
class ClassifierLogits(keras.layers.Layer):
    """The pre-activation output of a `Dense` classifier, sharing its weights.

    The classifier is tracked as this layer's sublayer, so its kernel, bias
    and L2 penalty belong to the training model exactly once. It computes
    in the classifier's dtype (float32 under mixed precision).

    Args:
        classifier: the built `keras.layers.Dense` (or its config, as
            `get_config` records it: a new, unshared Dense).
    """

    def __init__(self, classifier, **kwargs):
        if isinstance(classifier, dict):
            classifier = keras.saving.deserialize_keras_object(classifier)
        kwargs.setdefault("dtype", classifier.dtype_policy)
        super().__init__(**kwargs)
        self.classifier = classifier

    def build(self, input_shape):
        if not self.classifier.built:  # Made from a config: a Dense of its own.
            self.classifier.build(input_shape)

    def call(self, features):
        logits = ops.matmul(ops.cast(features, self.compute_dtype), self.classifier.kernel)
        if self.classifier.use_bias:
            logits = ops.add(logits, self.classifier.bias)
        return logits

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.classifier.units)

    def get_config(self):
        return {**super().get_config(), "classifier": keras.saving.serialize_keras_object(self.classifier)}


def mean_of(model):
    """The mean `model`'s mean layer subtracts, (H, W, 3) float32, or None.

    The saved model and its training model (`training_model`) both hold the
    mean layer at their top level.
    """
    try:
        layer = model.get_layer(MEAN_LAYER)
    except ValueError:
        return None
    return np.asarray(keras.ops.convert_to_numpy(layer.mean), np.float32)[0]
