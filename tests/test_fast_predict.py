"""`ResNetModel.predict` on arrays skips Keras's data adapter (keras_resnet.fast_predict).

Each call is compared with Keras's own `keras.Model.predict` on the same
model: the same bits (the same compiled function runs on the same batches),
NaN kept, the same types and progress bar; and every call the fast path
does not take goes to Keras. Speed is measured in benchmarks/predict_latency.py, not here. The
other backends run tests/fast_predict_check.py in a process of their own.
"""

import re
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_resnet
from keras_resnet import fast_predict

from conftest import TESTS, python_env

SIZE = 8


@pytest.fixture(scope="module")
def model():
    return keras_resnet.ResNet(20, input_shape=(SIZE, SIZE, 3), weights=None)


@pytest.fixture
def keras_calls(monkeypatch):
    """The calls that reached Keras's predict (and what they were given)."""
    calls = []
    original = keras.Model.predict

    def spy(self, x, *args, **kwargs):
        calls.append((x, args, kwargs))
        return original(self, x, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "predict", spy)
    return calls


def images(count, dtype="float32", seed=0):
    pixels = np.random.default_rng(seed).uniform(0, 255, (count, SIZE, SIZE, 3))
    return pixels.astype(dtype)


def keras_predict(model, x, **kwargs):
    return keras.Model.predict(model, x, **kwargs)


@pytest.mark.parametrize("count, dtype, batch_size", [
    (1, "float32", None), (2, "float64", None), (3, "uint8", None), (32, "float32", None),
    (5, "float16", None), (4, "int32", None),
    (33, "float32", None), (7, "float32", 3), (6, "uint8", 2),  # several batches, the last one shorter
])
def test_arrays_skip_keras_and_give_the_same_bits(model, keras_calls, count, dtype, batch_size):
    x = images(count, dtype)
    expected = keras_predict(model, x, batch_size=batch_size, verbose=0)
    keras_calls.clear()
    got = model.predict(x, batch_size=batch_size, verbose=0)
    assert keras_calls == []
    assert type(got) is np.ndarray and got.dtype == expected.dtype and got.shape == (count, 10)
    np.testing.assert_array_equal(got, expected)


def test_nan_in_nan_out_and_the_others_unchanged(model, keras_calls):
    x = images(3)
    x[1, 2, 3, 0] = np.nan
    x[2, 0, 0, 1] = np.inf
    got = model.predict(x, verbose=0)
    assert keras_calls == []
    assert np.isnan(got[1]).all() and np.isnan(got[2]).all() and np.isfinite(got[0]).all()
    np.testing.assert_array_equal(got, keras_predict(model, x, verbose=0))


def test_a_tensor_and_its_positional_arguments(model, keras_calls):
    x = images(4)
    tensor = keras.ops.convert_to_tensor(x)
    got = model.predict(tensor, 8, 0)  # batch_size=8, verbose=0, as Keras's signature has them
    assert keras_calls == [] and type(got) is np.ndarray
    np.testing.assert_array_equal(got, keras_predict(model, x, verbose=0))


def test_new_weights_are_used(keras_calls):
    other = keras_resnet.ResNet(20, input_shape=(SIZE, SIZE, 3), weights=None)
    x = images(2) / 255  # raw pixels through random weights saturate the softmax
    before = other.predict(x, verbose=0)
    rng = np.random.default_rng(1)
    other.set_weights([w + rng.normal(0, 0.1, w.shape).astype(w.dtype) for w in other.get_weights()])
    after = other.predict(x, verbose=0)
    assert keras_calls == [] and not np.array_equal(before, after)
    np.testing.assert_array_equal(after, keras_predict(other, x, verbose=0))


def test_several_outputs_keep_their_structure(keras_calls):
    net = keras_resnet.ResNet(20, input_shape=(SIZE, SIZE, 3), include_top=False)
    stages = keras_resnet.feature_extractor(net, ["conv2", "conv4"])
    both = keras_resnet.ResNetModel(stages.inputs, stages.outputs)
    x = images(2)
    got = both.predict(x, verbose=0)
    expected = keras_predict(both, x, verbose=0)
    assert keras_calls[1:] == [] and type(got) is type(expected)
    assert [type(g) for g in got] == [np.ndarray] * 2
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)


def _bar(text):
    """The progress bar's last state, without its timings (nor the backspaces
    that erase them); how often it redraws before that depends on the time."""
    last = text.replace("\b", "").rstrip().split("\r")[-1].rstrip()  # padded over a longer last redraw
    return re.sub(r"\d+(\.\d+)?(ms|s|us)(/step)?", "T", last)


@pytest.mark.parametrize("verbose, count, batches", [("auto", 2, "1/1"), (1, 2, "1/1"), (2, 2, "1/1"),
                                                     (1, 5, "3/3"), (2, 5, "3/3")])
def test_the_same_progress_bar(model, keras_calls, capsys, verbose, count, batches):
    x = images(count)
    keras_predict(model, x, batch_size=2, verbose=verbose)
    theirs = capsys.readouterr().out
    keras_calls.clear()
    model.predict(x, batch_size=2, verbose=verbose)
    ours = capsys.readouterr().out
    assert keras_calls == []
    assert batches in theirs and _bar(ours) == _bar(theirs)
    model.predict(x, verbose=0)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("described, call", [
    ("steps", lambda m: m.predict(images(2), steps=1, verbose=0)),
    ("callbacks", lambda m: m.predict(images(2), verbose=0, callbacks=[keras.callbacks.Callback()])),
    ("a list of one array", lambda m: m.predict([images(2)], verbose=0)),
    ("a generator", lambda m: m.predict(((x[None],) for x in images(2)), verbose=0)),
    ("a float batch_size", lambda m: m.predict(images(2), batch_size=2.0, verbose=0)),
    ("bool pixels", lambda m: m.predict(images(2) > 100, verbose=0)),
])
def test_everything_else_is_kerass(model, keras_calls, described, call):
    try:
        call(model)
    except (TypeError, ValueError):
        pass  # Keras's own answer to what it does not take
    assert len(keras_calls) == 1, described


def test_a_dataset_and_a_bad_argument_are_kerass(model, keras_calls):
    tf = pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.data input is the TensorFlow backend's")
    dataset = tf.data.Dataset.from_tensor_slices(images(3)).batch(2)
    np.testing.assert_array_equal(model.predict(dataset, verbose=0), keras_predict(model, images(3), verbose=0))
    assert len(keras_calls) == 2
    with pytest.raises(TypeError, match="unexpected keyword argument 'shuffle'"):
        model.predict(images(2), shuffle=True)
    assert fast_predict.predict_in_memory(model, images(2), shuffle=True) is fast_predict.NOT_HANDLED


def test_the_arguments_are_kerass():
    """The fast path reads predict's arguments as Keras 3 declares them."""
    import inspect

    ours = inspect.signature(fast_predict._predict_arguments).parameters
    theirs = dict(inspect.signature(keras.Model.predict).parameters)
    theirs.pop("self")
    assert [(p.name, p.default) for p in ours.values()] == [(p.name, p.default) for p in theirs.values()]


def test_the_image_checks_come_first(model, keras_calls):
    with pytest.raises(ValueError, match="One image without its batch axis"):
        model.predict(images(1)[0], verbose=0)
    with pytest.raises(ValueError, match=r"takes 8x8x3 images"):
        model.predict(np.zeros((1, 16, 16, 3), "float32"), verbose=0)
    assert model.predict(np.zeros((0, SIZE, SIZE, 3), "float32"), verbose=0).shape == (0, 10)
    assert keras_calls == []


@pytest.mark.multiprocess
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_backends(backend):
    result = subprocess.run(
        [sys.executable, str(TESTS / "fast_predict_check.py")],
        env=python_env(KERAS_BACKEND=backend, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3"),
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"OK {backend}" in result.stdout
