"""register_preset refuses a name that is not a non-empty str: any other key
would break every listing of presets afterwards (preset_names() sorts them)."""

import pytest

import keras_resnet
from keras_resnet import registry

from helpers_presets import isolated  # noqa: F401 (autouse: the registry is restored after each test)


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "r8.weights.h5"
    keras_resnet.ResNet(8).save_weights(str(path))
    return path


@pytest.mark.parametrize("name", [123, "", "  ", None, ("a",)])
def test_register_preset_refuses_a_name_that_is_not_a_string(name, path):
    with pytest.raises(ValueError, match=r"`name` must be a non-empty str\. Received name="):
        keras_resnet.register_preset(name, path, depth=8)
    assert name not in registry.PRESETS
    assert "akamaster_cifar10" in registry.preset_names()  # still sortable
