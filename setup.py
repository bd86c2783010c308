"""keras-resnet: every network of He et al. (2015) as a Keras 3 model."""

import pathlib
import re

import setuptools

HERE = pathlib.Path(__file__).parent
VERSION = re.search(
    r'__version__ = "([^"]+)"', (HERE / "keras_resnet" / "__init__.py").read_text()
).group(1)

setuptools.setup(
    name="keras-resnet",
    version=VERSION,
    description=(
        "The networks of 'Deep Residual Learning for Image Recognition' "
        "(He et al., 2015) as Keras 3 models, with the paper's training recipes."
    ),
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=setuptools.find_packages(include=["keras_resnet", "keras_resnet.*", "zoo", "zoo.*"]),
    # The CIFAR-10 presets' weights (float16, about 5.4 MB) and their licence notice;
    # the ImageNet-1k class names (keras_resnet.labels).
    package_data={"keras_resnet": ["weights_data/*.weights.h5", "weights_data/*.npy", "weights_data/NOTICE",
                                   "labels_data/*.tsv"]},
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.0",
        "tensorflow-datasets>=4.9",
        # tensorflow-datasets imports it (e.g. for tfds:cifar10) without declaring it.
        "importlib_resources",
        "absl-py",
        "h5py",
        "numpy",
    ],
    extras_require={
        # The training recipes: the embedded digits dataset (scikit-learn),
        # image folders (Pillow), TensorBoard logs and zoo.plot.
        "zoo": ["scikit-learn", "pillow", "tensorboard", "matplotlib"],
        # Everything the test suite needs (with "zoo"). torch==2.13.0 is the CPU build
        # these machines carry; a looser pin pulls a multi-GB CUDA build.
        "test": [
            "pytest>=7",
            "pytest-xdist>=3.2",  # CI runs on both cores: -n 2
            "scikit-learn",
            "pillow",
            "tensorboard",
            "matplotlib",
            "jax[cpu]",
            # Only to check keras_resnet.torch_checkpoint against torch.load;
            # the library itself never needs torch.
            "torch==2.13.0",
        ],
        # Peers, for benchmarks and weight conversion.
        "peers": ["keras-cv", "keras-hub", "safetensors"],
        # keras_resnet.export(format="onnx" | "litert" | "openvino") and the
        # runtimes that check the files (keras_resnet.runtimes): tf2onnx is
        # what Keras's ONNX exporter calls on TensorFlow; ai-edge-litert is the
        # maintained LiteRT interpreter (tf.lite.Interpreter is deprecated).
        # Tested (CI) with onnx 1.23.2, onnxruntime 1.32.0, tf2onnx 1.17.0,
        # ai-edge-litert 2.3.0, openvino 2026.4.1 beside tensorflow 2.21.
        "deploy": ["onnx>=1.17", "onnxruntime>=1.20", "tf2onnx>=1.17", "ai-edge-litert>=2.0", "openvino>=2025.0"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Keras",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
