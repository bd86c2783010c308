"""Training on the TensorFlow backend: tf.data pipelines under tf.distribute."""

import tensorflow as tf

from zoo import callbacks as callbacks_lib
from zoo import checkpoint
from zoo import distribute
from zoo import model as model_lib
from zoo import pipeline
from zoo import results as results_lib
from zoo import run as run_lib


def run(recipe, workdir, dataset, data_dir, strategy, verbose, strategy_name=None):
    """Builds data and model under the strategy, fits, evaluates, writes files.

    `dataset` is a `zoo.datasets.Dataset`; `strategy_name` the `--strategy`
    it was made from (for the line that says how many replicas train).

    In a multi-worker run every worker trains and runs the same callbacks;
    only the chief (worker 0) writes into `workdir`. Worker i writes its
    own copy under `workdir/.workers/worker-i`, so that the files never
    clash and the workers can be compared.
    """
    distribute.check_batch(recipe.batch_size, strategy.num_replicas_in_sync)
    print(distribute.describe(strategy, strategy_name), flush=True)
    if not distribute.is_chief(strategy):
        task_id = strategy.cluster_resolver.task_id
        workdir = run_lib.worker_dir(workdir, task_id)
        workdir.mkdir(parents=True, exist_ok=True)
    data = pipeline.build(dataset, recipe, data_dir)
    with strategy.scope():
        model, train_model, schedule = model_lib.build_training(recipe, data.mean)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # Keras 3's fit builds the model eagerly from a cross-worker mean of
        # the first batch, which MultiWorkerMirroredStrategy cannot do in
        # eager mode (keras-team/keras#20585). Left unset, the trainer takes
        # the strategy from the enclosing scope and builds while tracing.
        train_model._distribute_strategy = None
        _patch_scalar_mean_reduction()
    callbacks = callbacks_lib.callbacks(workdir, schedule)
    with strategy.scope():
        # Restored before the stream is made, so that it starts at the
        # checkpoint's step: a resumed run sees the batches an uninterrupted
        # one would (pipeline.Data.train_from).
        step = checkpoint.resume(train_model, callbacks, recipe.epoch_steps)
        train_model.fit(
            data.train_from(step),
            epochs=recipe.epochs,
            steps_per_epoch=recipe.epoch_steps,
            validation_data=data.val if recipe.val_size else None,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # The stream is shuffled already (and Keras would warn).
        )
        return results_lib.finish(workdir, recipe, model, train_model, data.test, data.classes)


def _patch_scalar_mean_reduction():
    """Lets Keras 3 average scalar metrics over MultiWorkerMirroredStrategy.

    Keras' `reduce_per_replica` reduces multi-worker values with
    `strategy.reduce("MEAN", v, axis=0)`, which fails on the scalar loss
    and metric values fit returns ("Invalid reduction dimension 0").
    Scalars are reduced with axis=None instead; everything else is
    unchanged. Remove once Keras supports MWMS in fit (keras#20585).
    """
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer.reduce_per_replica, "_zoo_patched", False):
        return
    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("mean", "auto") and isinstance(
            strategy, tf.distribute.MultiWorkerMirroredStrategy
        ):

            def reduce(v):
                local = strategy.experimental_local_results(v)[0]
                if getattr(local, "shape", None) is not None and local.shape.rank == 0:
                    return strategy.reduce("MEAN", v, axis=None)
                return original(v, strategy, reduction)

            return tf.nest.map_structure(reduce, values)
        return original(values, strategy, reduction)

    reduce_per_replica._zoo_patched = True
    trainer.reduce_per_replica = reduce_per_replica
