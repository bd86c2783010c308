"""Loading a saved model in a process that has not imported keras_resnet.

Keras imports a missing class's module only for its own packages (keras,
keras_hub, keras_cv, keras_nlp: `_retrieve_class_or_fn` in
keras/src/saving/serialization_lib.py), so `load_model` cannot find
`ResNetModel` before `import keras_resnet`, and its TypeError quotes the
saved model's whole config (the graph: ~70,000 characters for ResNet-20).
What keras_resnet can make true, and this checks in a fresh process:
`import keras_resnet` alone (no submodule) is enough, in safe mode too,
and the error's first lines already say which package and which net the
file holds (the architecture record comes first in the config). It also
checks that importing `keras_resnet.convert` does not import keras-hub.
"""

import subprocess
import sys

import pytest

import keras_resnet

SCRIPT = r"""
import sys
import keras

try:
    keras.saving.load_model(sys.argv[1])
    print("loaded without keras_resnet")
except TypeError as error:
    print("head:", str(error)[:700].replace("\n", " "))
import pytest

import keras_resnet

model = keras.saving.load_model(sys.argv[1], safe_mode=True)
print("class:", type(model).__name__, keras_resnet.architecture_of(model).constructor())
import keras_resnet.convert

print("keras_hub imported:", "keras_hub" in sys.modules)
"""


@pytest.mark.multiprocess
def test_import_keras_resnet_is_all_a_saved_model_needs(tmp_path):
    keras_resnet.ResNet(8, shortcut="B", classes=3).save(tmp_path / "m.keras")
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "m.keras")],
                            capture_output=True, text=True, timeout=300)
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    assert result.returncode == 0, result.stderr[-3000:]
    head = lines["head"]
    assert head.startswith("Could not locate class 'ResNetModel'")
    assert "'module': 'keras_resnet.model_classes'" in head
    assert "'architecture': {'family': 'cifar', 'depth': 8" in head
    assert lines["class"] == "ResNetModel keras_resnet.ResNet(8, shortcut='B', classes=3)"
    assert lines["keras_hub imported"] == "False"
