"""The TensorFlow and JAX paths train the same net the same way; PyTorch runs it.

Each backend runs tests/equivalence_check.py in its own process (Keras
fixes its backend at import) on the same inputs: the zoo's ResNet-20
training model with the same initial weights, and the same batches of
real images (scikit-learn's digits, the README's demo data) cut with the
paper's crop and flip. What must agree: every step's loss, the first
step's update (the gradient), the state after it (weights, BN moving
statistics, SGD's momentum slots), the learning rate of every step (the
recipe's warm-up and both decays fall inside the run), the weight-decay
term, and the forward pass (PyTorch's too).

One class starts dead: its classifier bias is -40, so its probability is
about e^-40 ~ 4e-18 on every image, the state in which the JAX path lost
whole classes of the README's demo. Keras's crossentropy on probabilities
has no gradient there on JAX and PyTorch (it clips them at 1e-7) and the
full one on TensorFlow (which finds the softmax's logits); the zoo trains
on the logits, so every backend must pull that class back alike.

Where the bounds come from. Both backends compute in float32, the path
training takes, with other kernels (oneDNN on AVX-512 CPUs, XLA) that sum
in other orders: 6e-8 relative per operation, over up to 16,384 terms
(BN statistics and kernel gradients: 16 images x 32 x 32 pixels).

- Forward: 20 layers of such sums keep the logits within ~1e-6 relative
  (measured 2e-7): bound 1e-5. Probabilities within 1e-6 absolute.
- One step: rounding flips the few ReLUs whose input is within ~1e-6 of
  0, and each adds or drops its whole gradient contribution, so updates
  differ by 1e-4 to 1e-2 per tensor (measured: worst 9e-3, a BN beta;
  as in test_zoo_distribute's mirrored test): the updates of all weights
  together within 5e-2, and the dead class's bias, which such flips hardly
  move, within 1e-3 (the wrong loss leaves it at exactly 0 on JAX). The
  moving statistics are forward quantities: within 1e-4 (measured 1.4e-5;
  a 0.99 momentum instead of 0.9, or an unbiased variance over the 1,024
  values of the last stage, is off by more than 1e-3). The momentum slots
  are -lr x gradient: the updates' bound.
- Later steps: the difference grows with each update, at lr 0.1 about 5x
  per step (measured on the loss: 1e-7, 3e-6, 1e-5, 5e-5 after steps
  1-4), so losses are compared over the run's first 6 steps, whose lr
  decays to 0.001, within 1e-3; a wrong lr at any step (10x) or a missing
  weight decay moves them by more.
- Learning rates are equal exactly; the weight-decay term, a sum of
  270k squares, within 1e-6.
"""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import reference

from conftest import python_env

REPO = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests" / "equivalence_check.py"
STEPS, BATCH, PAD = 6, 16, 4
DEAD_CLASS_BIAS = -40.0
RESOLVE = {
    "name": "cifar10_resnet20",
    "dataset": "digits",
    "steps": STEPS,
    # Two warm-up steps at 0.01, then 0.1 divided by 10 at steps 3 and 4
    # (0.5 and 0.75 of 6). The batches come cut already: pad=0 and no
    # flips in the model itself.
    "assignments": ["batch_size=16", "val_size=200", "epoch_steps=6", "warmup_lr=0.01",
                    "warmup_steps=2", "pad=0", "flip=false"],
}


def run(backend, *args):
    env = python_env(KERAS_BACKEND=backend, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, f"{backend}: {result.stdout[-2000:]}{result.stderr[-4000:]}"


def relative(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The shared inputs: initial weights (one dead class) and 30 cut batches."""
    import keras

    from zoo import datasets
    from zoo import fit_arrays
    from zoo import train

    root = tmp_path_factory.mktemp("equivalence")
    recipe = train.resolve(**RESOLVE)
    images, labels = datasets.load_arrays(datasets.parse("digits"), recipe).train
    rng = np.random.default_rng(0)
    order = rng.permutation(len(labels))[: STEPS * BATCH].reshape(STEPS, BATCH)
    offsets = rng.integers(0, 2 * PAD + 1, (STEPS, BATCH, 2))
    flips = rng.random((STEPS, BATCH)) < 0.5
    batches = np.stack([
        reference.pad_crop_flip(images[order[s]].astype("float32"), offsets[s], flips[s], PAD)
        for s in range(STEPS)
    ])
    keras.utils.set_random_seed(0)
    model, train_model, _ = fit_arrays.build_train_model(recipe, images)
    dead = int(labels[order[0, 0]])
    classifier = model.layers[-1].get_layer("predictions")
    bias = keras.ops.convert_to_numpy(classifier.bias).copy()
    bias[dead] = DEAD_CLASS_BIAS
    classifier.bias.assign(bias)
    weights = root / "initial.weights.h5"
    train_model.save_weights(weights)
    path = root / "inputs.npz"
    np.savez(
        path, recipe=json.dumps(RESOLVE), weights=str(weights), train_images=images,
        batches=batches, labels=labels[order].astype("int32"),
    )
    return {"root": root, "path": path, "dead": dead, "recipe": recipe,
            "labels": labels[order], "images": images}


def outputs(inputs, backend):
    out = inputs["root"] / f"{backend}.npz"
    if not out.exists():
        run(backend, "train", inputs["path"], out, "float32")
    return dict(np.load(out))


def state_keys(result, prefix):
    return sorted(k for k in result if k.startswith(prefix + "/"))


def bias_key(result):
    (key,) = [k for k in state_keys(result, "initial") if k.endswith("predictions/bias")]
    return key.split("/", 1)[1]


@pytest.mark.slow
@pytest.mark.multiprocess
def test_tensorflow_and_jax_train_the_same(inputs):
    tf, jax = outputs(inputs, "tensorflow"), outputs(inputs, "jax")
    # Same start (the one file), the same state variables on both backends.
    assert state_keys(tf, "step1") == state_keys(jax, "step1")
    for key in state_keys(tf, "initial"):
        np.testing.assert_array_equal(tf[key], jax[key], err_msg=key)
    # The recipe's schedule, computed by each backend.
    expected_lr = [0.01, 0.01, 0.1, 0.01, 0.001, 0.001]
    np.testing.assert_allclose(tf["lr"], expected_lr, rtol=1e-6)
    np.testing.assert_array_equal(jax["lr"], tf["lr"])
    # Coupled weight decay: L2(1e-4 / 2) on every conv and dense kernel.
    kernels = [v for k, v in tf.items() if k.startswith("initial/weight:") and k.endswith("kernel")]
    decay = 0.5e-4 * sum(float(np.sum(np.square(k, dtype=np.float64))) for k in kernels)
    assert float(tf["weight_decay"]) == pytest.approx(decay, rel=1e-6)
    assert float(jax["weight_decay"]) == pytest.approx(decay, rel=1e-6)
    assert relative(jax["forward_training"], tf["forward_training"]) < 1e-5
    np.testing.assert_allclose(jax["forward_inference"], tf["forward_inference"], atol=1e-6)
    np.testing.assert_allclose(jax["losses"], tf["losses"], rtol=1e-3)
    # The first update is -lr * gradient: weights and momentum slots alike.
    delta = lambda r, k: r[k].astype(np.float64) - r[k.replace("step1/", "initial/")]
    trained = [k for k in state_keys(tf, "step1") if "moving_" not in k and "iteration" not in k]
    total = np.sqrt(sum(np.sum((delta(jax, k) - delta(tf, k)) ** 2) for k in trained))
    total /= np.sqrt(sum(np.sum(delta(tf, k) ** 2) for k in trained))
    assert total < 5e-2, f"first updates differ by {total:.2e}"
    for key in state_keys(tf, "step1"):
        if "moving_" in key:
            assert relative(jax[key], tf[key]) < 1e-4, key
        if "iteration" in key:
            assert int(tf[key]) == int(jax[key]) == 1, key
    # The dead class's bias: gradient = its images' mean (p - 1) ~ -(share).
    key = "step1/" + bias_key(tf)
    dead = inputs["dead"]
    share = float(np.mean(inputs["labels"][0] == dead))
    tf_move, jax_move = delta(tf, key)[dead], delta(jax, key)[dead]
    assert tf_move == pytest.approx(0.01 * share, rel=1e-3)  # lr 0.01 (warm-up) x share
    assert jax_move == pytest.approx(tf_move, rel=1e-3), (
        f"JAX moved the dead class's bias by {jax_move:.3g}, TensorFlow by {tf_move:.3g}"
    )


@pytest.mark.slow
@pytest.mark.multiprocess
def test_pytorch_runs_the_same_forward_pass(inputs):
    tf, torch = outputs(inputs, "tensorflow"), outputs(inputs, "torch")
    assert relative(torch["forward_training"], tf["forward_training"]) < 1e-5
    np.testing.assert_allclose(torch["forward_inference"], tf["forward_inference"], atol=1e-6)


@pytest.mark.multiprocess
def test_augmentation_cuts_the_same_pixels_on_every_backend(tmp_path):
    rng = np.random.default_rng(1)
    raw = rng.uniform(0, 255, (32, 32, 32, 3)).astype("float32")
    raw[0, 10, 10, 2] = np.nan
    offsets = rng.integers(0, 2 * PAD + 1, (32, 2)).astype("int32")
    flips = rng.random(32) < 0.5
    path = tmp_path / "crops.npz"
    np.savez(path, raw=raw, offsets=offsets, flips=flips, pad=PAD)
    expected = reference.pad_crop_flip(raw, offsets, flips, PAD)
    for backend in ("tensorflow", "jax", "torch"):
        out = tmp_path / f"{backend}.npz"
        run(backend, "crops", path, out)
        np.testing.assert_array_equal(np.load(out)["crops"], expected, err_msg=backend)
