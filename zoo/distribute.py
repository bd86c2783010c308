"""One string, one tf.distribute strategy (TensorFlow backend only).

    auto          MirroredStrategy over all visible GPUs if there are several,
                  OneDeviceStrategy on the one GPU, else the default strategy.
    mirrored      MirroredStrategy over all visible devices of this host.
    one_device    OneDeviceStrategy on the first GPU, else the CPU.
    multi_worker  MultiWorkerMirroredStrategy; the cluster comes from TF_CONFIG.
    tpu           TPUStrategy on the TPU named by --tpu (or the local one).

Batch sizes in recipes are global: each replica gets batch / replicas.
"""

import json
import os

STRATEGIES = ("auto", "mirrored", "one_device", "multi_worker", "tpu")


def get_strategy(name, tpu=None):
    """Returns the `tf.distribute.Strategy` named `name`.

    Args:
        name: one of `STRATEGIES`.
        tpu: TPU address or name for `tpu` ("" or None: the local TPU).

    Raises:
        ValueError: for an unknown name, a missing or malformed TF_CONFIG
            with multi_worker, or no TPU found with tpu.
    """
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}. Valid strategies: {', '.join(STRATEGIES)}.")
    import tensorflow as tf

    if name == "multi_worker":
        # Before anything that initialises TF's context (even listing
        # devices): collectives must be configured at program start.
        check_tf_config(os.environ.get("TF_CONFIG"))
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        if len(gpus) > 1:
            return tf.distribute.MirroredStrategy()
        if len(gpus) == 1:
            return tf.distribute.OneDeviceStrategy(gpus[0].name)
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError, RuntimeError) as error:
        raise ValueError(
            f"--strategy=tpu found no TPU (tpu={tpu!r}): {error}. Use --strategy=auto "
            "on CPU/GPU hosts."
        ) from error
    return tf.distribute.TPUStrategy(resolver)


def check_tf_config(text):
    """Checks the TF_CONFIG of a multi-worker run; returns it parsed.

    Raises:
        ValueError: if it is missing, not JSON, or lacks cluster.worker and
            a task with a valid index.
    """
    example = (
        '{"cluster": {"worker": ["host1:port", "host2:port"]}, '
        '"task": {"type": "worker", "index": 0}}'
    )
    if not text:
        raise ValueError(
            f"--strategy=multi_worker needs the TF_CONFIG environment variable, e.g. {example}. "
            "Received no TF_CONFIG."
        )
    try:
        config = json.loads(text)
        workers = config["cluster"]["worker"]
        task = config["task"]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"TF_CONFIG must look like {example}. Received TF_CONFIG={text!r} ({error!r})."
        ) from None
    if task.get("type") in (None, "worker") and not 0 <= index < len(workers):
        raise ValueError(
            f"TF_CONFIG task index {index} is out of range for {len(workers)} workers. "
            f"Received TF_CONFIG={text!r}."
        )
    return config


def is_chief(strategy):
    """Whether this process writes the run's files (worker 0, or single host)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (task_type == "worker" and task_id == 0)


def check_batch(batch_size, replicas):
    """Checks that a global batch splits evenly over the replicas.

    Raises:
        ValueError: naming both numbers, if it does not.
    """
    if batch_size % replicas:
        raise ValueError(
            f"The global batch_size={batch_size} does not split evenly over {replicas} "
            f"replicas. Use a multiple of {replicas} (--set=batch_size=...)."
        )
    return batch_size // replicas


def describe(strategy, name=None):
    """One line for the console: the strategy, how many replicas train, on which devices.

    Args:
        strategy: a `tf.distribute.Strategy`.
        name: the `STRATEGIES` name it was made from, for the hint when
            "mirrored" found a single device.
    """
    replicas = strategy.num_replicas_in_sync
    kind = type(strategy).__name__
    if kind.startswith("_Default"):  # No strategy: TF places ops itself.
        kind, devices = "the default strategy", []
    else:
        kind = f"tf.distribute.{kind}"
        devices = [d.rsplit("/", 1)[-1].replace("device:", "") for d in strategy.extended.worker_devices]
    line = (f"zoo: {kind}, {replicas} replica{'s' if replicas != 1 else ''}"
            + (f" ({', '.join(devices)})" if devices else ""))
    if name == "mirrored" and replicas == 1:
        line += (": MirroredStrategy found one device. On a CPU host, split the CPU into logical "
                 "devices first to train on several replicas (README, Distribution).")
    return line
