"""The model factory against the paper: counts, FLOPs, structure, errors."""

import functools

import keras
import numpy as np
import pytest

import keras_resnet
from keras_resnet import specs


@functools.lru_cache(maxsize=None)
def build(depth, shortcut=None, plain=False, **kwargs):
    return keras_resnet.ResNet(depth, shortcut=shortcut, plain=plain, **dict(kwargs))


def trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


# --- Parameter counts (Table 6 and torchvision's ImageNet counts) -----------

CIFAR_A = {20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018, 110: 1_727_962}
CIFAR_B = {20: 272_474, 32: 466_906, 44: 661_338, 56: 855_770, 110: 1_730_714}
CIFAR_C = {20: 283_962, 32: 489_594, 44: 695_226, 56: 900_858, 110: 1_826_202}
IMAGENET_B = {
    18: 11_689_512, 34: 21_797_672, 50: 25_557_032, 101: 44_549_160, 152: 60_192_808
}
IMAGENET_A = {
    18: 11_515_688, 34: 21_623_848, 50: 22_780_456, 101: 41_772_584, 152: 57_416_232
}
IMAGENET_C = {
    18: 12_043_816, 34: 22_716_840, 50: 40_128_552, 101: 76_981_288, 152: 107_335_720
}


def projection_params(cin, cout):
    return cin * cout + 2 * cout  # 1x1 kernel, no bias; BN gamma and beta


@pytest.mark.parametrize("depth", sorted(CIFAR_A))
def test_cifar_parameter_counts(depth):
    assert trainable(build(depth)) == CIFAR_A[depth]  # default shortcut is A
    assert trainable(build(depth, plain=True)) == CIFAR_A[depth]
    assert trainable(build(depth, "B")) == CIFAR_B[depth]
    assert trainable(build(depth, "C")) == CIFAR_C[depth]
    # B adds exactly the two stage-transition projections.
    extra_b = projection_params(16, 32) + projection_params(32, 64)
    assert CIFAR_B[depth] - CIFAR_A[depth] == extra_b
    # C adds a projection to every one of the 3n blocks.
    n = (depth - 2) // 6
    extra_c = (
        n * projection_params(16, 16)
        + projection_params(16, 32) + (n - 1) * projection_params(32, 32)
        + projection_params(32, 64) + (n - 1) * projection_params(64, 64)
    )
    assert CIFAR_C[depth] - CIFAR_A[depth] == extra_c


@pytest.mark.parametrize("depth", sorted(IMAGENET_B))
def test_imagenet_parameter_counts_option_b(depth):
    assert trainable(build(depth)) == IMAGENET_B[depth]  # default shortcut is B


@pytest.mark.parametrize("depth", [18, 50])
def test_imagenet_parameter_counts_a_c_plain(depth):
    assert trainable(build(depth, "A")) == IMAGENET_A[depth]
    assert trainable(build(depth, plain=True)) == IMAGENET_A[depth]
    assert trainable(build(depth, "C")) == IMAGENET_C[depth]


@pytest.mark.slow
@pytest.mark.parametrize("depth", [34, 101, 152])
def test_imagenet_parameter_counts_a_c_plain_deep(depth):
    assert trainable(build(depth, "A")) == IMAGENET_A[depth]
    assert trainable(build(depth, plain=True)) == IMAGENET_A[depth]
    assert trainable(build(depth, "C")) == IMAGENET_C[depth]


def test_variant_keeps_parameter_count_and_moves_the_stride():
    v1, v15 = build(50), build(50, variant="v1.5")
    assert trainable(v1) == trainable(v15) == IMAGENET_B[50]
    assert v1.get_layer("conv3_block1_1_conv").strides == (2, 2)
    assert v1.get_layer("conv3_block1_2_conv").strides == (1, 1)
    assert v15.get_layer("conv3_block1_1_conv").strides == (1, 1)
    assert v15.get_layer("conv3_block1_2_conv").strides == (2, 2)
    assert v15.name == "resnet50_v1_5"


# --- FLOPs (Table 1) --------------------------------------------------------

TABLE1_FLOPS = {18: 1.8e9, 34: 3.6e9, 50: 3.8e9, 101: 7.6e9, 152: 11.3e9}


@pytest.mark.parametrize("depth", sorted(TABLE1_FLOPS))
def test_flops_match_table1(depth):
    flops = keras_resnet.count_flops(build(depth))
    assert abs(flops - TABLE1_FLOPS[depth]) / TABLE1_FLOPS[depth] < 0.05, flops


def test_flops_counts_convs_and_dense_exactly():
    # ResNet-20: stem 32*32*3*3*3*16, then 3n convs per stage, plus the head.
    n = 3
    expected = 32 * 32 * 27 * 16
    expected += 2 * n * 32 * 32 * 9 * 16 * 16
    expected += 16 * 16 * 9 * (16 * 32 + (2 * n - 1) * 32 * 32)
    expected += 8 * 8 * 9 * (32 * 64 + (2 * n - 1) * 64 * 64)
    expected += 64 * 10
    assert keras_resnet.count_flops(build(20)) == expected
    # Option-B projections are counted too, v1.5 costs more than v1.
    assert keras_resnet.count_flops(build(20, "B")) > expected
    assert keras_resnet.count_flops(build(50, variant="v1.5")) > keras_resnet.count_flops(build(50))


def test_flops_needs_fixed_input_size():
    model = keras_resnet.ResNet(20, input_shape=(None, None, 3))
    with pytest.raises(ValueError, match="fixed input size"):
        keras_resnet.count_flops(model)


# --- Structure --------------------------------------------------------------

def layer_names(model):
    return [layer.name for layer in model.layers]


def test_cifar_structure_and_stage_shapes():
    model = build(20)
    assert model.output.shape == (None, 10)
    assert model.input.shape == (None, 32, 32, 3)
    names = keras_resnet.stage_output_names(model)
    assert names == {
        "conv2": "conv2_block3_out", "conv3": "conv3_block3_out", "conv4": "conv4_block3_out"
    }
    shapes = {s: tuple(model.get_layer(n).output.shape) for s, n in names.items()}
    assert shapes == {
        "conv2": (None, 32, 32, 16), "conv3": (None, 16, 16, 32), "conv4": (None, 8, 8, 64)
    }
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert len(convs) + 1 == 20  # 6n+2 weighted layers: convs plus the dense


def test_imagenet_structure_and_stage_shapes():
    model = build(50)
    assert model.output.shape == (None, 1000)
    assert model.get_layer("conv1_relu").output.shape == (None, 112, 112, 64)
    assert model.get_layer("pool1_pool").output.shape == (None, 56, 56, 64)
    names = keras_resnet.stage_output_names(model)
    shapes = [tuple(model.get_layer(n).output.shape) for n in names.values()]
    assert list(names) == ["conv2", "conv3", "conv4", "conv5"]
    assert shapes == [
        (None, 56, 56, 256), (None, 28, 28, 512), (None, 14, 14, 1024), (None, 7, 7, 2048)
    ]
    weighted = [l for l in model.layers if isinstance(l, (keras.layers.Conv2D, keras.layers.Dense))]
    projections = [l for l in model.layers if l.name.endswith("_0_conv")]
    assert len(weighted) - len(projections) == 50


def test_shortcut_structure():
    plain = build(20, plain=True)
    assert not any(isinstance(l, keras.layers.Add) for l in plain.layers)
    assert not any("_0_" in n for n in layer_names(plain))

    option_a = build(20, "A")
    assert not any(n.endswith("_0_conv") for n in layer_names(option_a))
    pads = [l for l in option_a.layers if isinstance(l, keras_resnet.ZeroPadShortcut)]
    assert [l.name for l in pads] == ["conv3_block1_0_pad", "conv4_block1_0_pad"]
    assert sum(isinstance(l, keras.layers.Add) for l in option_a.layers) == 9  # 3n

    option_b = build(20, "B")
    assert [n for n in layer_names(option_b) if n.endswith("_0_conv")] == [
        "conv3_block1_0_conv", "conv4_block1_0_conv"
    ]
    option_c = build(20, "C")
    assert len([n for n in layer_names(option_c) if n.endswith("_0_conv")]) == 9


def test_layer_order_and_initialisation():
    model = build(20)
    conv = model.get_layer("conv2_block1_1_conv")
    assert not conv.use_bias
    init = conv.kernel_initializer.get_config()
    assert (init["scale"], init["mode"], init["distribution"]) == (2.0, "fan_in", "untruncated_normal")
    # The draws are N(0, 2 / fan_in), and differ from layer to layer.
    kernel = model.get_layer("conv4_block2_1_conv").kernel.numpy()
    assert kernel.std() == pytest.approx((2 / (3 * 3 * 64)) ** 0.5, rel=0.05)
    other = model.get_layer("conv4_block2_2_conv").kernel.numpy()
    assert not np.allclose(kernel, other)
    # ReLU comes after the addition: the block output consumes the Add.
    out = model.get_layer("conv2_block1_out")
    assert out._inbound_nodes[0].operation is out
    assert out.input is model.get_layer("conv2_block1_add").output
    assert not any(isinstance(l, keras.layers.Dropout) for l in model.layers)


def test_option_a_shortcut_subsamples_and_zero_pads():
    layer = keras_resnet.ZeroPadShortcut(8, strides=2)
    x = np.arange(2 * 5 * 5 * 3, dtype="float32").reshape(2, 5, 5, 3)
    y = keras.ops.convert_to_numpy(layer(x))
    assert y.shape == (2, 3, 3, 8)
    np.testing.assert_array_equal(y[..., :3], x[:, ::2, ::2, :])
    np.testing.assert_array_equal(y[..., 3:], 0)
    first = keras_resnet.ZeroPadShortcut(8, strides=2, data_format="channels_first")
    xt = np.transpose(x, (0, 3, 1, 2))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(first(xt)), np.transpose(y, (0, 3, 1, 2))
    )


def test_family_resolution():
    assert build(50).name == "resnet50"
    assert len(keras_resnet.stage_output_names(build(50))) == 4
    cifar50 = keras_resnet.ResNet(50, family="cifar")
    assert cifar50.name == "resnet50_cifar"
    assert cifar50.output.shape == (None, 10)
    assert trainable(cifar50) < 1_000_000
    assert specs.resolve_family(8) == "cifar"
    assert specs.resolve_family(200) == "imagenet"
    assert specs.resolve_family(200, "cifar") == "cifar"


def test_named_constructors():
    assert keras_resnet.resnet20().name == "resnet20"
    assert keras_resnet.plain34(input_shape=(64, 64, 3), classes=5).name == "plain34"
    assert trainable(keras_resnet.plain56()) == CIFAR_A[56]
    assert keras_resnet.resnet18(include_top=False, input_shape=(64, 64, 3)).output.shape == (
        None, 2, 2, 512
    )


# --- keras.applications-style arguments -------------------------------------

def test_include_top_pooling_and_channels():
    assert build(20, include_top=False).output.shape == (None, 8, 8, 64)
    assert build(20, include_top=False, pooling="avg").output.shape == (None, 64)
    assert build(20, include_top=False, pooling="max").output.shape == (None, 64)
    assert isinstance(
        build(20, pooling="max").get_layer("max_pool"), keras.layers.GlobalMaxPooling2D
    )
    for channels in (1, 4):
        model = keras_resnet.ResNet(20, input_shape=(32, 32, channels), classes=3)
        x = np.random.rand(2, 32, 32, channels).astype("float32")
        assert model.predict(x, verbose=0).shape == (2, 3)


def test_any_input_size_and_classifier_activation():
    model = keras_resnet.ResNet(18, input_shape=(None, None, 3), classifier_activation=None)
    for size in (32, 97):
        logits = model(np.random.rand(1, size, size, 3).astype("float32"))
        assert logits.shape == (1, 1000)
    probs = build(20)(np.random.rand(2, 32, 32, 3).astype("float32"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(probs).sum(-1), 1.0, rtol=1e-5)


def test_input_tensor():
    inputs = keras.Input((40, 40, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    model = keras_resnet.ResNet(20, input_tensor=x)
    assert model.inputs[0] is inputs
    assert model.output.shape == (None, 10)


def test_channels_first_builds():
    # TensorFlow's CPU kernels run only channels_last convolutions, so the
    # numeric channels_first check runs under JAX and PyTorch
    # (tests/test_backends.py).
    first = keras_resnet.ResNet(20, data_format="channels_first", include_top=False)
    assert first.input.shape == (None, 3, 32, 32)
    assert first.output.shape == (None, 64, 8, 8)
    assert first.get_layer("conv2_block1_1_bn").axis == [1] or first.get_layer(
        "conv2_block1_1_bn").axis == 1
    assert keras_resnet.count_flops(first) == keras_resnet.count_flops(
        keras_resnet.ResNet(20, include_top=False)
    )


def test_weight_decay_is_coupled_l2():
    model = keras_resnet.ResNet(8, weight_decay=1e-4)
    kernels = [l.kernel for l in model.layers if isinstance(l, (keras.layers.Conv2D, keras.layers.Dense))]
    assert len(model.losses) == len(kernels)
    expected = sum(0.5e-4 * float(np.sum(np.square(k.numpy()))) for k in kernels)
    assert float(sum(keras.ops.convert_to_numpy(l) for l in model.losses)) == pytest.approx(expected, rel=1e-4)
    assert not keras_resnet.ResNet(8).losses


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_logits_are_float32(policy):
    keras.config.set_dtype_policy(policy)
    try:
        model = keras_resnet.ResNet(8, classifier_activation=None)
        assert model.get_layer("conv1_conv").compute_dtype == policy.split("_")[1]
        out = model(np.random.rand(2, 32, 32, 3).astype("float32"))
        assert keras.backend.standardize_dtype(out.dtype) == "float32"
    finally:
        keras.config.set_dtype_policy("float32")


# --- Feature extraction -----------------------------------------------------

def test_feature_extractor():
    model = build(18)
    features = keras_resnet.feature_extractor(model, stages=["conv3", "conv5"])
    out = features(np.random.rand(1, 224, 224, 3).astype("float32"))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "conv3": (1, 28, 28, 128), "conv5": (1, 7, 7, 512)
    }
    # It shares the backbone's weights.
    assert features.get_layer("conv1_conv") is model.get_layer("conv1_conv")
    with pytest.raises(ValueError, match=r"`stages` must be among \['conv2', 'conv3', 'conv4', 'conv5'\]"):
        keras_resnet.feature_extractor(model, stages=["conv6"])


# --- Learning ---------------------------------------------------------------

def test_fit_reduces_loss_on_a_learnable_batch():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=64)
    x = rng.normal(size=(64, 16, 16, 3)).astype("float32") * 0.1
    x[y == 1, :8] += 1.0  # class 1 is bright in the top half
    model = keras_resnet.ResNet(8, input_shape=(16, 16, 3), classes=2)
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    before = model.evaluate(x, y, verbose=0)[0]
    model.fit(x, y, batch_size=16, epochs=8, verbose=0)
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert loss < 0.5 * before
    assert accuracy >= 0.9
