"""zoo.calibration: int8 calibration images come from the run's training part only."""

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from zoo import calibration
from zoo import datasets
from zoo import pipeline
from zoo import recipes

SMALL_IMAGENET = dict(image_size=32, scale_min=36, scale_max=40, eval_resize=36, val_size=2,
                      batch_size=4, mean_examples=4, steps=4, epoch_steps=2)


def test_tfds_streamed_calibration_draws_evaluation_views_of_training_records():
    # Was: a ValueError from unpacking pipeline._sources' seven results into six names.
    recipe = dataclasses.replace(recipes.get("imagenet_resnet18"), **SMALL_IMAGENET)
    config = {"dataset": "tfds:imagenet2012", "data_dir": "/nonexistent/manual"}
    with tfds.testing.mock_data(num_examples=10):
        images, record = calibration.draw(recipe, config, count=3)
        src = pipeline.sources(datasets.parse("tfds:imagenet2012"), recipe, "/nonexistent/manual")
        first = [record_ for record_, _ in src.train.take(1)][0]
        expected = pipeline.augment.imagenet_eval(src.decode(first), 32, 36).numpy()
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
    assert record["images"] == 3 and "train[2:]" in record["selection"]
    np.testing.assert_array_equal(images[0], np.clip(np.round(expected), 0, 255).astype(np.uint8))
