"""Training on the TensorFlow backend: tf.data pipelines under tf.distribute."""

import pathlib
import tempfile

from zoo import distribute
from zoo import model as model_lib
from zoo import pipeline
from zoo import runs


def run(recipe, workdir, config, dataset, data_dir, strategy_name, tpu, verbose):
    """Builds data and model under the strategy, fits, evaluates, writes files.

    In a multi-worker run every worker trains; only the chief writes into
    `workdir`, the others into a throwaway directory (the usual TF pattern,
    since all workers must run the same callbacks).
    """
    strategy = distribute.get_strategy(strategy_name, tpu)
    distribute.check_batch(recipe.batch_size, strategy.num_replicas_in_sync)
    if not distribute.is_chief(strategy):
        workdir = pathlib.Path(tempfile.mkdtemp(prefix="zoo-worker-"))
    data = pipeline.build(dataset, recipe, data_dir)
    with strategy.scope():
        model = model_lib.build(recipe, data.mean)
        schedule = runs.compile_model(model, recipe)
    model.fit(
        data.train,
        epochs=recipe.epochs,
        steps_per_epoch=recipe.epoch_steps,
        validation_data=data.val if recipe.val_size else None,
        callbacks=runs.callbacks(workdir, schedule),
        verbose=verbose,
    )
    return runs.finish(workdir, recipe, model, model, data.test, data.classes)
