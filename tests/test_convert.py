"""The converters compute the same function as the peer they port from.

Each peer gets random weights, BN statistics and conv biases included (with
the peers' default init, moving mean 0 and variance 1, a converter that
dropped them would still pass), then both nets run on the same random
images, with and without the top. The fast run covers one net per
converter (keras.applications ResNet-50, torchvision and keras-cv
ResNet-18); the other depths, layouts and the keras-cv classifier are slow.
"""

import keras
import numpy as np
import pytest

from keras_resnet import convert
from keras_resnet import porting

from helpers_torch import akamaster_logits, akamaster_reference, torch_reference, torchvision_state_dict

TOLERANCE = 1e-4


def _randomise(model, rng):
    """Random BN statistics/affines and conv biases, keeping activations O(1)."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            # The last BN of a residual branch gets a small gamma so that
            # deep stacks neither explode nor vanish.
            scale = 0.3 if layer.name.endswith(("_2_bn", "_3_bn")) else 1.0
            layer.set_weights([
                rng.uniform(0.5, 1.5, n) * scale,
                rng.normal(0, 0.1, n),
                rng.normal(0, 0.5, n),
                rng.uniform(0.5, 2.0, n),
            ])
        elif isinstance(layer, keras.layers.Conv2D) and layer.use_bias:
            layer.set_weights([layer.kernel.numpy(), rng.normal(0, 0.5, layer.bias.shape)])
        elif isinstance(layer, keras.layers.Dense):
            layer.set_weights([rng.normal(0, 0.05, w.shape) for w in layer.get_weights()])


def _features(model, name="conv5_block3_out"):
    return keras.Model(model.input, model.get_layer(name).output)


def _max_diff(a, b, x):
    return float(np.max(np.abs(a.predict(x, verbose=0) - b.predict(x, verbose=0))))


# ---------------------------------------------------------------- keras.applications


def _check_keras_applications(constructor, depth, blocks5=3, no_top_peer=True):
    rng = np.random.default_rng(depth)
    peer = constructor(weights=None, input_shape=(64, 64, 3), classifier_activation=None)
    _randomise(peer, rng)
    ours = convert.from_keras_applications(peer)
    assert ours.name == f"resnet{depth}"
    x = rng.uniform(-120, 120, (2, 64, 64, 3)).astype("float32")
    assert _max_diff(peer, ours, x) <= TOLERANCE
    last = f"conv5_block{blocks5}_out"
    assert _max_diff(_features(peer, last), _features(ours, last), x) <= TOLERANCE

    if not no_top_peer:
        return
    # The same weights without the top, built by the converter from a
    # no-top peer.
    no_top = constructor(weights=None, include_top=False, input_shape=(64, 64, 3), pooling="avg")
    no_top.set_weights(peer.get_weights()[: len(no_top.get_weights())])
    ours_no_top = convert.from_keras_applications(no_top)
    assert "predictions" not in [layer.name for layer in ours_no_top.layers]
    assert _max_diff(no_top, ours_no_top, x) <= TOLERANCE


def test_keras_applications_resnet50():
    # The no-top peer costs two more model builds; 101 and 152 check it.
    _check_keras_applications(keras.applications.ResNet50, 50, no_top_peer=False)


@pytest.mark.slow
def test_keras_applications_resnet101():
    _check_keras_applications(keras.applications.ResNet101, 101)


@pytest.mark.slow
def test_keras_applications_resnet152():
    # 101 checks the no-top peer; here it would add a minute.
    _check_keras_applications(keras.applications.ResNet152, 152, no_top_peer=False)


def test_keras_applications_rejects_resnet_v2():
    peer = keras.applications.ResNet50V2(weights=None, include_top=False, input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="ResNetV2"):
        convert.from_keras_applications(peer)


def test_fold_batch_norm_is_exact_in_float64():
    rng = np.random.default_rng(0)
    gamma, beta, mean, var, bias = (rng.uniform(0.5, 2, 8) for _ in range(5))
    x = rng.normal(size=(4, 8))
    eps_src, eps_dst = 1.001e-5, 1e-5
    expected = gamma * (x + bias - mean) / np.sqrt(var + eps_src) + beta
    g, b, m, v = (a.astype(np.float64) for a in porting.fold_batch_norm(
        gamma, beta, mean, var, conv_bias=bias, epsilon=eps_src, target_epsilon=eps_dst))
    np.testing.assert_allclose(g * (x - m) / np.sqrt(v + eps_dst) + b, expected, rtol=1e-6)


# ---------------------------------------------------------------- torchvision


@pytest.mark.parametrize("depth", [
    18, pytest.param(34, marks=pytest.mark.slow), pytest.param(50, marks=pytest.mark.slow)])
def test_torchvision(depth):
    state = torchvision_state_dict(depth, classes=10, seed=depth)
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (2, 64, 64, 3)).astype("float32")
    ours = convert.from_torchvision(state, input_shape=(64, 64, 3), classifier_activation=None)
    assert ours.output_shape == (None, 10)
    if depth == 50:
        assert ours.name == "resnet50_v1_5"  # torchvision's stride layout
    got = ours.predict(x, verbose=0)
    np.testing.assert_allclose(got, torch_reference(state, x), atol=TOLERANCE, rtol=0)

    no_top = convert.from_torchvision(state, include_top=False, input_shape=(64, 64, 3))
    np.testing.assert_allclose(
        no_top.predict(x, verbose=0), torch_reference(state, x, include_top=False),
        atol=TOLERANCE, rtol=0,
    )


@pytest.mark.slow
def test_torchvision_v1_stride_layout():
    state = torchvision_state_dict(50, classes=5, seed=3)
    x = np.random.default_rng(2).normal(0, 1, (1, 64, 64, 3)).astype("float32")
    ours = convert.from_torchvision(state, variant="v1", input_shape=(64, 64, 3),
                                    classifier_activation=None)
    np.testing.assert_allclose(ours.predict(x, verbose=0),
                               torch_reference(state, x, stride_in_3x3=False),
                               atol=TOLERANCE, rtol=0)
    # And the layouts differ, so a wrong variant cannot pass unnoticed.
    assert np.max(np.abs(ours.predict(x, verbose=0) - torch_reference(state, x))) > 1e-3


def test_torchvision_from_safetensors(tmp_path):
    safetensors = pytest.importorskip("safetensors.numpy")
    state = torchvision_state_dict(18, classes=3)
    path = tmp_path / "model.safetensors"
    safetensors.save_file(state, str(path))
    loaded = porting.load_safetensors(str(path))
    x = np.random.default_rng(0).normal(0, 1, (1, 64, 64, 3)).astype("float32")
    ours = convert.from_torchvision(loaded, input_shape=(64, 64, 3), classifier_activation=None)
    np.testing.assert_allclose(ours.predict(x, verbose=0), torch_reference(state, x),
                               atol=TOLERANCE, rtol=0)


def test_torchvision_errors():
    state = torchvision_state_dict(18, classes=3)
    with pytest.raises(ValueError, match="layer2.0.downsample.1.running_var"):
        convert.from_torchvision({k: v for k, v in state.items()
                                  if k != "layer2.0.downsample.1.running_var"})
    with pytest.raises(ValueError, match="lacks.*'extra.weight'"):
        convert.from_torchvision({**state, "extra.weight": np.zeros(3)})
    with pytest.raises(ValueError, match="basic blocks per stage \\(2, 2, 1, 2\\)"):
        convert.from_torchvision({k: v for k, v in state.items() if not k.startswith("layer3.1.")})
    with pytest.raises(ValueError, match="no 'fc.weight'"):
        convert.from_torchvision({k: v for k, v in state.items() if not k.startswith("fc.")},
                                 include_top=True)


# ---------------------------------------------------------------- keras-cv


def _keras_cv_backbone(block_type, layout, **kwargs):
    keras_cv = pytest.importorskip("keras_cv")
    return keras_cv.models.ResNetBackbone(
        stackwise_filters=[64, 128, 256, 512], stackwise_blocks=list(layout),
        stackwise_strides=[1, 2, 2, 2], block_type=block_type, **kwargs)


@pytest.mark.parametrize("block_type,layout,depth", [
    ("basic_block", (2, 2, 2, 2), 18),
    pytest.param("block", (3, 4, 6, 3), 50, marks=pytest.mark.slow),
])
def test_keras_cv_backbone(block_type, layout, depth):
    # 65 = 32 * 2 + 1: every stride-2 layer sees an odd side, where TF's
    # "same" padding is symmetric like ours (see keras_resnet.convert).
    peer = _keras_cv_backbone(block_type, layout, include_rescaling=False, input_shape=(65, 65, 3))
    rng = np.random.default_rng(depth)
    _randomise(peer, rng)
    ours = convert.from_keras_cv(peer)
    assert ours.name == f"resnet{depth}"
    x = rng.normal(0, 1, (2, 65, 65, 3)).astype("float32")
    assert _max_diff(peer, ours, x) <= TOLERANCE

    # Even sides: keras-cv pads asymmetrically, so outputs differ (the
    # documented caveat; if this ever fails, fix the docstring).
    even = _keras_cv_backbone(block_type, layout, include_rescaling=False, input_shape=(64, 64, 3))
    even.set_weights(peer.get_weights())
    x64 = x[:, :64, :64]
    assert _max_diff(even, convert.from_keras_cv(even), x64) > 1e-3


@pytest.mark.slow
def test_keras_cv_classifier_with_rescaling():
    keras_cv = pytest.importorskip("keras_cv")
    backbone = _keras_cv_backbone("basic_block", (2, 2, 2, 2), include_rescaling=True,
                                  input_shape=(33, 33, 3))
    peer = keras_cv.models.ImageClassifier(backbone=backbone, num_classes=7, activation="softmax")
    _randomise(peer, np.random.default_rng(5))
    ours = convert.from_keras_cv(peer)
    assert ours.output_shape == (None, 7)
    x = np.random.default_rng(6).uniform(0, 255, (2, 33, 33, 3)).astype("float32")
    assert _max_diff(peer, ours, x) <= TOLERANCE


# ---------------------------------------------------------------- option-A CIFAR (akamaster)


def _random_option_a_state(depth, seed):
    torch = pytest.importorskip("torch")
    torch.manual_seed(seed)
    net = akamaster_reference(depth)
    rng = np.random.default_rng(seed)
    for name, module in net.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            scale = 0.3 if name.endswith("bn2") else 1.0
            module.weight.data = torch.from_numpy(rng.uniform(0.5, 1.5, n).astype("float32") * scale)
            module.bias.data = torch.from_numpy(rng.normal(0, 0.1, n).astype("float32"))
            module.running_mean = torch.from_numpy(rng.normal(0, 0.5, n).astype("float32"))
            module.running_var = torch.from_numpy(rng.uniform(0.5, 2.0, n).astype("float32"))
    state = {f"module.{k}": v.numpy() for k, v in net.state_dict().items()}
    return net, state


def test_cifar_option_a_random_weights():
    net, state = _random_option_a_state(14, seed=0)
    ours = convert.from_cifar_option_a({"state_dict": state, "best_prec1": 0.0},
                                       classifier_activation=None)
    assert ours.name == "resnet14" and ours.output_shape == (None, 10)
    x = np.random.default_rng(1).normal(0, 1, (4, 32, 32, 3)).astype("float32")
    expected = akamaster_logits(net, x)
    np.testing.assert_allclose(ours.predict(x, verbose=0), expected, atol=TOLERANCE, rtol=0)
    backbone = convert.from_cifar_option_a(state, include_top=False, pooling="avg")
    assert backbone.output_shape == (None, 64)

    # Appending the zeros (our layout) instead is a different function: a
    # converter that skipped the channel renumbering could not pass.
    wrong = convert.from_cifar_option_a(state, zeros="end", classifier_activation=None)
    assert np.max(np.abs(wrong.predict(x, verbose=0) - expected)) > 0.1


def test_option_a_channel_orders():
    orders = porting.option_a_channel_orders((16, 32, 64))
    np.testing.assert_array_equal(orders[0], np.arange(16))
    # Stage 2: the identity sits in the middle (8..23), zeros at 0..7, 24..31.
    np.testing.assert_array_equal(orders[1], np.r_[8:24, 0:8, 24:32])
    np.testing.assert_array_equal(orders[2][:32], 16 + orders[1])
    assert sorted(orders[2]) == list(range(64))
    for order in porting.option_a_channel_orders((16, 32, 64), zeros="end"):
        np.testing.assert_array_equal(order, np.arange(len(order)))
    with pytest.raises(ValueError, match="zeros.*Received zeros='both'"):
        porting.option_a_channel_orders((16, 32), zeros="both")


def test_cifar_option_a_errors():
    _, state = _random_option_a_state(8, seed=2)
    with pytest.raises(ValueError, match="layer2.0.bn2.running_var"):
        convert.from_cifar_option_a({k: v for k, v in state.items()
                                     if k != "module.layer2.0.bn2.running_var"})
    with pytest.raises(ValueError, match="lacks.*'extra.weight'"):
        convert.from_cifar_option_a({**state, "extra.weight": np.zeros(3)})
    with pytest.raises(ValueError, match="blocks per stage"):
        convert.from_cifar_option_a({k: v for k, v in state.items() if not k.startswith("module.layer3")})
    with pytest.raises(ValueError, match="Received a list"):
        convert.from_cifar_option_a([1, 2])
