"""zoo.analysis: Fig. 7's layer-response stds, checked against numpy."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_resnet
from zoo import analysis
from zoo import model as model_lib
from zoo import recipes

from conftest import REPO


def direct_stds(net, images):
    """The definition, computed the slow way: every BN output, np.std over all of it."""
    names = analysis.response_layers(net)
    probe = keras.Model(net.inputs, [net.get_layer(n).output for n in names])
    outputs = probe.predict(images, verbose=0)
    return [float(np.std(o.astype(np.float64))) for o in outputs], [
        float(np.std(o.astype(np.float64), axis=(0, 1, 2)).mean()) for o in outputs
    ]


def trained_like(net, seed=0):
    """Random BN statistics and scales, so that responses differ by layer."""
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([
                rng.uniform(0.2, 2.0, gamma.shape), rng.normal(0, 0.5, beta.shape),
                rng.normal(0, 1, mean.shape), rng.uniform(0.5, 4, var.shape),
            ])
    return net


def test_response_layers_are_the_3x3_convs_bn():
    net = keras_resnet.ResNet(20)
    names = analysis.response_layers(net)
    # conv1 and two 3x3 convs in each of the 9 blocks: 19 = 6n + 1.
    assert len(names) == 19 and names[0] == "conv1_bn" and names[-1] == "conv4_block3_2_bn"
    assert len(analysis.response_layers(keras_resnet.ResNet(20, plain=True))) == 19
    # ImageNet bottlenecks: only their 3x3 (the 7x7 stem and 1x1s are not).
    assert len(analysis.response_layers(keras_resnet.ResNet(50, input_shape=(64, 64, 3)))) == 16
    with pytest.raises(ValueError, match="no 3x3 conv layers"):
        analysis.response_layers(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))


def test_stds_match_numpy_on_the_whole_responses():
    net = trained_like(keras_resnet.ResNet(20))
    images = np.random.default_rng(1).uniform(0, 255, (37, 32, 32, 3)).astype("float32")
    stats = analysis.layer_stds(net, images, batch_size=16)  # batches of 16, 16, 5
    expected, expected_channel = direct_stds(net, images)
    np.testing.assert_allclose(stats["std"], expected, rtol=1e-5)
    np.testing.assert_allclose(stats["channel_std"], expected_channel, rtol=1e-5)
    assert np.ptp(stats["std"]) > 0.1  # the check is not trivial
    with pytest.raises(ValueError, match="needs at least one image. Received 0"):
        analysis.layer_stds(net, images[:0])


def test_zoo_model_goes_through_its_mean_layer():
    recipe = recipes.get("cifar10_plain20")
    mean = np.random.default_rng(2).uniform(100, 140, (32, 32, 3)).astype("float32")
    model = model_lib.build(recipe, mean)
    net = trained_like(analysis.find_net(model), seed=3)
    images = np.random.default_rng(4).uniform(0, 255, (20, 32, 32, 3)).astype("float32")
    stats = analysis.layer_stds(model, images)
    expected, _ = direct_stds(net, images - mean)
    np.testing.assert_allclose(stats["std"], expected, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.multiprocess
def test_cli_on_a_run_and_a_preset(tmp_path):
    """A short digits run and a shipped preset, through `python -m zoo.analysis`."""
    env_cmd = [sys.executable, "-m", "zoo.train", "--recipe=cifar10_plain20", f"--workdir={tmp_path / 'run'}",
               "--steps=2", "--set=batch_size=8", "--set=val_size=8"]
    subprocess.run(env_cmd, cwd=REPO, check=True, capture_output=True, timeout=300)
    out = tmp_path / "fig7"
    result = subprocess.run(
        [sys.executable, "-m", "zoo.analysis", f"--workdir={tmp_path / 'run'}", "--preset=cifar10:20",
         "--dataset=digits", "--limit=50", f"--out={out}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(out.with_suffix(".json").read_text())
    assert [d["label"] for d in data] == ["cifar10_plain20", "cifar10 ResNet-20"]
    assert all(len(d["std"]) == 19 and d["images"] == 50 for d in data)
    assert out.with_suffix(".png").stat().st_size > 10000
    bad = subprocess.run(
        [sys.executable, "-m", "zoo.analysis", "--preset=cifar10"], cwd=REPO, capture_output=True, text=True,
    )
    assert bad.returncode == 2, bad.stderr[-2000:]
    assert "PRESET:DEPTH" in bad.stderr.split("Error: ", 1)[1].splitlines()[0]  # the message first, no help
