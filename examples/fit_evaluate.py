"""Build, compile, fit, evaluate and predict: the plain Keras workflow.

Uses only keras and keras_resnet. By default it trains a CIFAR-style
ResNet-20 on scikit-learn's bundled 8x8 handwritten digits (1,797 real
images, no download), upsampled to 32x32 and split 80/20:

    python examples/fit_evaluate.py                 # about a minute on 2 CPU cores
    python examples/fit_evaluate.py --epochs 1      # a quick look
    python examples/fit_evaluate.py --dataset cifar10   # needs internet (tfds), once
"""

import argparse
import socket
import sys
import urllib.parse

import keras
import numpy as np

import keras_resnet


def load_digits():
    """scikit-learn's digits as 32x32x3 float images in [0, 1], 80/20 split."""
    from sklearn.datasets import load_digits as sklearn_digits

    data = sklearn_digits()
    images = data.images.astype("float32") / 16.0  # pixel values are 0..16
    images = np.repeat(np.repeat(images, 4, axis=1), 4, axis=2)[..., None]
    images = np.repeat(images, 3, axis=-1)
    order = np.random.default_rng(0).permutation(len(images))
    images, labels = images[order], data.target[order]
    split = int(0.8 * len(images))
    return (images[:split], labels[:split]), (images[split:], labels[split:]), 10


def load_cifar10():
    import tensorflow_datasets as tfds

    builder = tfds.builder("cifar10")
    if not builder.is_prepared():
        _check_online(builder)
    train, test = tfds.as_numpy(
        tfds.load("cifar10", split=["train", "test"], batch_size=-1, as_supervised=True)
    )
    scale = lambda split: (split[0].astype("float32") / 255.0, split[1])  # noqa: E731
    return scale(train), scale(test), 10


def _check_online(builder, timeout_s=10):
    """Exits with a sentence if CIFAR-10 would have to be downloaded and its
    site cannot be reached: tfds would retry for minutes, then raise
    requests' ConnectionError."""
    host = urllib.parse.urlparse(builder.info.homepage).hostname
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
    except OSError as error:
        sys.exit(
            f"CIFAR-10 is not in tfds' data directory ({builder.data_dir}) and {host}, where "
            f"tfds downloads it, cannot be reached ({error}). Run once with internet, or copy a "
            "prepared tensorflow_datasets/cifar10 folder there (TFDS_DATA_DIR sets the "
            "directory), or use the bundled data: --dataset digits."
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["digits", "cifar10"], default="digits")
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(0)
    loader = load_digits if args.dataset == "digits" else load_cifar10
    (x_train, y_train), (x_test, y_test), classes = loader()

    # The training-set per-pixel mean is subtracted inside the model, so it
    # takes raw images at predict time (paper Sec. 4.2).
    inputs = keras.Input(x_train.shape[1:])
    centred = keras.layers.Normalization(
        axis=(1, 2, 3), mean=x_train.mean(0), variance=np.ones_like(x_train[0])
    )(inputs)
    model = keras_resnet.ResNet(
        args.depth, input_tensor=centred, classes=classes, weight_decay=1e-4
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
        validation_split=0.1, verbose=2,
    )
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    predicted = model.predict(x_test[:10], verbose=0).argmax(-1)
    print(f"predicted {predicted.tolist()} for labels {y_test[:10].tolist()}")
    print(f"test loss {loss:.4f}  test accuracy {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
