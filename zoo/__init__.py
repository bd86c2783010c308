"""keras-resnet's zoo: the paper's training recipes and the machinery to run them.

Where things live (one owner per idea; the others call it):

    recipes      one typed, registered config per paper experiment; Recipe.to_dict / from_dict
    run          the run directory: file names, its config, finished or not, opening it (lock,
                 config check), loading the recipe / model.keras / classes, writing a finished run
    lock         the operating system's lock on a directory, with its holder's pid
    files        files written whole: the one write-then-rename (files.staged), strict JSON
    datasets     where images come from: digits, image folders, tfds; a spec parsed once into a
                 Dataset; the train/val split
    pipeline     tf.data pipelines; `sources`: a streamed dataset's undecoded splits
    augment      the paper's ImageNet augmentations and eval resize/crop, TF ops
    augment_ops  the CIFAR pad/crop/flip in Keras ops (every backend); the centre-crop offset
    stream       the batch order and augmentation draws of every in-memory loop (seed, step)
    model        the recipe's net behind its mean, its training model (logits out), compile_model
    schedules    the lr schedule
    distribute   the tf.distribute strategy factory
    fit_tf       training on TensorFlow: tf.data under tf.distribute
    fit_arrays   training without TensorFlow: in-memory arrays, Keras's fit or zoo.scan_loop
    scan_loop    JAX with the data on the device: one compiled program per epoch (or K replicas)
    callbacks    the callbacks every loop passes to fit, in their order
    nonfinite    the non-finite guard: NonFiniteError, StopOnNonFinite, nonfinite_weights
    checkpoint   Checkpoint (BackupAndRestore, resuming only from a consistent pair), resume;
                 the mean beside it; the model rebuilt from the last checkpoint
    results      what a finished run records: the test split evaluated, results.json's figures
    history      history.csv and the callback that writes it
    seeds        zoo.train --seeds: K seeds of one recipe in one program
    calibration  int8 calibration images from a run's training split
    cli          what the commands share: errors first, paths expanded, --help exits 0
    train, evaluate, export, sweep, analysis, plot   the commands (python -m zoo.NAME);
                 nothing imports them to reach a helper
    command      `keras-resnet COMMAND`, the installed command: runs `python -m zoo.COMMAND`

    keras-resnet train --recipe=cifar10_resnet20 --workdir=/tmp/r20   # = python -m zoo.train ...
    keras-resnet evaluate --workdir=/tmp/r20
    keras-resnet plot /tmp/plain20 /tmp/resnet20 --out=fig6.png
    keras-resnet recipes                                              # = python -m zoo

Importing zoo does not import TensorFlow (the JAX path runs without it).
"""
