"""zoo.evaluate: the evaluation views are the pipeline's resize and centre crop."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from zoo import augment
from zoo import evaluate
from zoo import recipes


@pytest.mark.parametrize("shape", [(300, 400, 3), (500, 333, 3), (224, 224, 3), (100, 180, 3)])
def test_center_view_is_the_pipelines_eval_crop(shape):
    image = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    recipe = recipes.get("imagenet_resnet18")
    (view,) = evaluate.views(image, recipe, "center")
    expected = augment.imagenet_eval(tf.constant(image), recipe.image_size, recipe.eval_resize)
    np.testing.assert_array_equal(view, expected.numpy())


def test_ten_crops_are_corners_centre_and_mirrors():
    image = np.random.default_rng(1).integers(0, 256, (260, 300, 3)).astype(np.uint8)
    recipe = dataclasses.replace(recipes.get("imagenet_resnet18"), eval_resize=260)
    crops = evaluate.views(image, recipe, "ten_crop")
    full = image.astype(np.float32)
    assert crops.shape == (10, 224, 224, 3)
    np.testing.assert_array_equal(crops[0], full[:224, :224])
    np.testing.assert_array_equal(crops[3], full[-224:, -224:])
    np.testing.assert_array_equal(crops[4], np.asarray(augment.center_crop(tf.constant(full), 224)))
    np.testing.assert_array_equal(crops[5:], crops[:5, :, ::-1])


def test_resize_is_the_pipelines_and_skipped_at_the_right_size():
    image = np.random.default_rng(2).integers(0, 256, (40, 50, 3)).astype(np.uint8)
    np.testing.assert_array_equal(evaluate._resize_shorter(image, 40), image.astype(np.float32))
    np.testing.assert_array_equal(
        evaluate._resize_shorter(image, 64), augment.resize_shorter(tf.constant(image, tf.float32), 64).numpy())
