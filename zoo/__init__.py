"""keras-resnet's zoo: the paper's training recipes and the machinery to run them.

    python -m zoo.train --recipe=cifar10_resnet20 --workdir=/tmp/r20
    python -m zoo.evaluate --workdir=/tmp/r20
    python -m zoo.plot /tmp/plain20 /tmp/resnet20 --out=fig6.png

Importing zoo does not import TensorFlow (the JAX path runs without it).
"""
