"""The strategy factory, MirroredStrategy equivalence and a 2-worker run."""

import json
import socket
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_resnet  # noqa: F401  (registers the option-A layer for loading)
from zoo import distribute
from zoo_helpers import ENV, REPO


def test_unknown_strategy_lists_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown strategy 'gpu'. Valid strategies: auto, mirrored"):
        distribute.get_strategy("gpu")


def test_multi_worker_needs_a_valid_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs the TF_CONFIG environment variable"):
        distribute.get_strategy("multi_worker")
    with pytest.raises(ValueError, match=r"TF_CONFIG must look like .*Received TF_CONFIG='\{oops'"):
        distribute.check_tf_config("{oops")
    with pytest.raises(ValueError, match="task index 2 is out of range for 2 workers"):
        distribute.check_tf_config(
            json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}})
        )


def test_tpu_without_a_tpu_is_a_clear_error():
    with pytest.raises(ValueError, match="--strategy=tpu found no TPU"):
        distribute.get_strategy("tpu")


def test_global_batch_must_split_over_replicas():
    assert distribute.check_batch(128, 2) == 64
    with pytest.raises(ValueError, match=r"batch_size=130 does not split evenly over 4 replicas"):
        distribute.check_batch(130, 4)


def test_auto_is_the_default_strategy_without_gpus():
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        pytest.skip("this check is for CPU-only hosts")
    assert distribute.get_strategy("auto") is tf.distribute.get_strategy()
    assert distribute.get_strategy("one_device").num_replicas_in_sync == 1


def test_other_strategies_need_tensorflow_backend(tmp_path, monkeypatch):
    from zoo import recipes
    from zoo import train

    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    recipe = train.resolve("cifar10_resnet20")
    with pytest.raises(ValueError, match="--strategy=mirrored needs the TensorFlow backend"):
        train.train_and_evaluate(recipe, tmp_path, strategy="mirrored")
    assert recipes.get("cifar10_resnet20")  # nothing was registered or changed


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import dataclasses, json, keras, numpy as np
    from zoo import model as model_lib, recipes

    dtype = sys.argv[1]
    recipe = dataclasses.replace(recipes.get("cifar10_resnet20"), batch_size=16, steps=2, epoch_steps=2)
    rng = np.random.default_rng(0)
    half = rng.integers(0, 256, (2, 8, 32, 32, 3)).astype(dtype)
    labels = rng.integers(0, 10, (2, 8)).astype("int32")
    # Each global batch is two identical halves: each replica's BatchNorm
    # then sees the same statistics as the single device, so the runs
    # compute the same updates, up to rounding.
    x = np.concatenate([half, half], axis=1).reshape(-1, 32, 32, 3)
    y = np.concatenate([labels, labels], axis=1).reshape(-1)
    mean = rng.uniform(0, 255, (32, 32, 3)).astype("float32")
    # float64: floatx too, or Keras computes the loss in float32.
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)

    def train(strategy, initial=None):
        keras.utils.set_random_seed(1)
        with strategy.scope():
            model = model_lib.build(recipe, mean)
            model_lib.compile_model(model, recipe)
        if initial is not None:
            model.set_weights(initial)
        start = [w.numpy() for w in model.weights]
        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
        loss = model.fit(data, epochs=1, verbose=0).history["loss"][-1]
        deltas = {w.path: (w.numpy() - s).astype("float64")
                  for w, s in zip(model.weights, start) if w.trainable}
        return loss, start, deltas

    loss_s, initial, delta_s = train(tf.distribute.get_strategy())
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    loss_m, _, delta_m = train(mirrored, initial)
    # How far the weight updates (w - w_init) differ, relative to the
    # update: over all trainable tensors together, and the worst tensor.
    total = np.sqrt(sum(np.sum((delta_m[k] - d) ** 2) for k, d in delta_s.items()))
    total /= np.sqrt(sum(np.sum(d ** 2) for d in delta_s.values()))
    per_tensor = {k: float(np.linalg.norm(delta_m[k] - d) / (np.linalg.norm(d) + 1e-30))
                  for k, d in delta_s.items()}
    worst = max(per_tensor, key=per_tensor.get)
    print(json.dumps({"loss_mirrored": loss_m, "loss_single": loss_s, "update_diff": float(total),
                      "worst_tensor": worst, "worst_tensor_diff": per_tensor[worst]}))
    """
)


def run_mirrored(dtype):
    # One process per dtype: a second MirroredStrategy in one process reuses
    # collective instance keys, which then clash on the other dtype.
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, dtype],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.multiprocess
def test_mirrored_over_two_cpus_matches_no_strategy():
    """Two SGD steps of ResNet-20 on two CPU replicas equal two on one device.

    Where the bounds come from. The runs do the same arithmetic in another
    order (per-replica sums of 8 images, then an all-reduce, instead of sums
    of 16), so they differ by rounding, and by what rounding does to ReLU:

    - float64 is the equivalence check. Its rounding is 2^-53 = 1.1e-16 per
      operation; the longest sums here (BN statistics and kernel gradients,
      16 images x 32 x 32 pixels = 16,384 terms) are off by at most
      16,384 x 1.1e-16 = 1.8e-12 relative, and BN's backward pass, a
      difference of such sums, can lose two or three more digits. A ReLU
      unit changes side only if its input is within ~1e-13 of 0: among the
      ~3M units of two steps, that is expected 1e-6 times. So the updates
      must agree within 1e-9 (measured: 3.5e-15); a real strategy error
      (an unscaled or unreduced replica gradient) is of order 1.
    - float32 is the path training takes (FusedBatchNormV3, and oneDNN
      kernels where TensorFlow enables them). Its rounding (6e-8, summed
      over up to 16,384 terms) moves a few of the ~3M ReLU inputs that sit
      within ~1e-6 of 0 across 0, and each such unit adds or drops its
      whole gradient contribution. That, not rounding itself, is why the
      updates differ by 1e-4 to 1e-3, and why the old fixed bound of 1e-3
      failed on AVX-512 CPUs: on Linux, TensorFlow enables oneDNN by default
      only on CPUs with AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX
      (DefaultOneDnnPolicy in tensorflow/core/util/port.cc), and oneDNN's
      blocked reductions
      round differently from Eigen's (measured on one AVX-512 host:
      1.5e-3 with oneDNN, 1.3e-4 with TF_ENABLE_ONEDNN_OPTS=0, and the
      worst tensor is a BN gamma, a sum over 16,384 ReLU-gated terms). The
      float32 check is therefore coarse: losses within 1e-4 (the second
      step's loss sees the first update) and updates within 5e-2, which a
      handful of flipped units stay far below and an order-1 error
      does not.
    """
    exact = run_mirrored("float64")
    assert exact["loss_mirrored"] == pytest.approx(exact["loss_single"], rel=1e-12)
    assert exact["update_diff"] < 1e-9, exact
    fast = run_mirrored("float32")
    assert fast["loss_mirrored"] == pytest.approx(fast["loss_single"], rel=1e-4)
    assert fast["update_diff"] < 5e-2, fast


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_worker_multi_worker_mirrored_run_agrees(tmp_path):
    workers = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        command = [
            sys.executable,
            "-m",
            "zoo.train",
            "--recipe=cifar10_resnet20",
            f"--workdir={tmp_path / 'run'}",
            "--strategy=multi_worker",
            "--steps=4",
            "--set=batch_size=16",
            "--set=val_size=64",
        ]
        env = {**ENV, "TF_CONFIG": json.dumps(tf_config)}
        processes.append(
            subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    outputs = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=420)
            outputs.append((process.returncode, out, err))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for code, out, err in outputs:
        assert code == 0, err[-3000:]
        assert "test_accuracy=" in out
    chief = tmp_path / "run"
    other = chief / ".workers" / "worker-1"
    results = [json.loads((d / "results.json").read_text()) for d in (chief, other)]
    assert results[0]["steps"] == results[1]["steps"] == 4
    models = [keras.saving.load_model(d / "model.keras") for d in (chief, other)]
    # Gradients are all-reduced, so the trainable weights agree. BatchNorm's
    # moving statistics are not synchronised (each worker's own batches),
    # as with per-GPU BN in the paper; they are not compared.
    for a, b in zip(models[0].trainable_weights, models[1].trainable_weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, err_msg=a.path)
