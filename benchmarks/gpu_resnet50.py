"""ResNet-50 on one GPU: ours (Keras 3 on JAX) beside torchvision, in one run.

    KERAS_BACKEND=jax python -m benchmarks.gpu_resnet50 --json r50.json

Needs a CUDA machine with JAX, PyTorch and torchvision (no TensorFlow).
Both frameworks live in one process (JAX told not to preallocate), and the
timed repetitions alternate between them so that clock and thermal drift
hit both. Measured, after warm-up, on synthetic data already on the GPU:

- training img/s: batch 256, 224x224, bf16 compute (Keras `mixed_bfloat16`;
  torch `autocast(bfloat16)` with channels_last), SGD with momentum 0.9 and
  coupled weight decay 1e-4, the whole step compiled (`jax.jit` of Keras's
  stateless `train_step`; `torch.compile` of the model);
- inference img/s at batch 256, and batch-1 latency (median of calls, each
  synchronised).

torchvision's resnet50 strides in the 3x3 conv ("v1.5"), so it is compared
with our `variant="v1.5"` (4.09 GFLOPs); our default v1 (3.86) is timed too.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

from benchmarks import args as args_lib

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=20, help="steps per timed repetition")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps after compiling")
    parser.add_argument("--latency-calls", type=int, default=50)
    parser.add_argument("--only", choices=("ours", "torch"), default=None)
    parser.add_argument("--variants", default="v1.5,v1", help="our variants to time (v1.5 is torchvision's)")
    parser.add_argument("--no-torch-compile", action="store_true", help="eager torch (CPU smoke runs)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    args_lib.require_positive(parser, args, ("batch", "image_size", "steps", "repeats", "latency_calls"))
    args.variants = args.variants.split(",")
    if not set(args.variants) <= {"v1", "v1.5"}:
        parser.error(f"--variants takes v1 and/or v1.5. Received {args.variants}.")
    if args.warmup < 0:
        parser.error(f"--warmup must be >= 0. Received {args.warmup}.")
    return args


class Ours:
    """keras_resnet.ResNet(50) on JAX: jitted stateless train/predict steps."""

    def __init__(self, args, variant):
        import jax
        import keras
        import numpy as np

        import keras_resnet
        from zoo import scan_loop

        self.jax = jax
        self.name = f"keras_resnet {variant} (JAX)"
        keras.config.set_dtype_policy("mixed_bfloat16")
        size = args.image_size
        model = keras_resnet.ResNet(
            50, variant=variant, input_shape=(size, size, 3), weight_decay=1e-4
        )
        model.compile(
            optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
            loss="sparse_categorical_crossentropy",
        )
        rng = np.random.default_rng(0)
        x = rng.standard_normal((args.batch, size, size, 3), np.float32)
        y = rng.integers(0, 1000, args.batch).astype(np.int32)
        scan_loop.prepare(model, x, y)
        self.model = model
        self.data = (jax.device_put(x), jax.device_put(y))
        self.state = scan_loop.get_state(model)
        self.train_fn = jax.jit(model.train_step, donate_argnums=0)
        self.predict_fn = jax.jit(
            lambda t, n, x: model.stateless_call(t, n, x, training=False)[0]
        )
        self.x1 = jax.device_put(x[:1])
        self.dtype_policy = "mixed_bfloat16"

    def train(self, steps):
        logs = None
        for _ in range(steps):
            logs, self.state = self.train_fn(self.state, self.data)
        return float(logs["loss"])  # waits for the last step

    def infer(self, steps, x=None):
        x = self.data[0] if x is None else x
        out = None
        for _ in range(steps):
            out = self.predict_fn(self.state[0], self.state[1], x)
        out.block_until_ready()
        return out

    def latency(self):
        self.infer(1, self.x1)


class Torchvision:
    """torchvision.models.resnet50: bf16 autocast, channels_last, torch.compile."""

    def __init__(self, args):
        import torch
        import torchvision

        self.torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.name = f"torchvision resnet50 (torch {torch.__version__})"
        torch.backends.cudnn.benchmark = True
        model = torchvision.models.resnet50().to(self.device, memory_format=torch.channels_last)
        self.model = model
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
        self.loss = torch.nn.CrossEntropyLoss()
        size = args.image_size
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(args.batch, 3, size, size, generator=gen)
        self.x = x.to(self.device).contiguous(memory_format=torch.channels_last)
        self.y = torch.randint(0, 1000, (args.batch,), generator=gen).to(self.device)
        self.x1 = self.x[:1].contiguous(memory_format=torch.channels_last)
        compile_ = (lambda m: m) if args.no_torch_compile else torch.compile
        self.train_model = compile_(model)
        self.eval_model = compile_(model)  # a separate cache entry for eval mode

    def _sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def train(self, steps):
        torch = self.torch
        self.model.train()
        loss = None
        for _ in range(steps):
            with torch.autocast(self.device, dtype=torch.bfloat16):
                loss = self.loss(self.train_model(self.x), self.y)
            loss.backward()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        return float(loss)

    def infer(self, steps, x=None):
        torch = self.torch
        x = self.x if x is None else x
        self.model.eval()
        with torch.no_grad(), torch.autocast(self.device, dtype=torch.bfloat16):
            for _ in range(steps):
                out = self.eval_model(x)
        self._sync()
        return out

    def latency(self):
        self.infer(1, self.x1)


def timed(function, *args):
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def measure(runners, args):
    """Warm up each runner, then interleave timed repetitions."""
    results = {r.name: {"train": [], "infer": [], "latency_ms": []} for r in runners}
    for runner in runners:
        compile_s = timed(runner.train, 1)
        runner.train(args.warmup)
        infer_compile_s = timed(runner.infer, 1)
        runner.infer(args.warmup)
        latency_compile_s = timed(runner.latency)
        print(
            f"{runner.name}: first train step {compile_s:.1f} s, first inference "
            f"{infer_compile_s:.1f} s, first batch-1 call {latency_compile_s:.1f} s",
            flush=True,
        )
        results[runner.name].update(
            first_train_step_s=compile_s, first_infer_s=infer_compile_s
        )
    for repeat in range(args.repeats):
        for runner in runners:
            row = results[runner.name]
            row["train"].append(args.steps * args.batch / timed(runner.train, args.steps))
            row["infer"].append(args.steps * args.batch / timed(runner.infer, args.steps))
            calls = [timed(runner.latency) * 1e3 for _ in range(args.latency_calls)]
            row["latency_ms"].append(statistics.median(calls))
            print(
                f"repeat {repeat + 1}: {runner.name}: train {row['train'][-1]:.0f} img/s, "
                f"infer {row['infer'][-1]:.0f} img/s, batch-1 {row['latency_ms'][-1]:.2f} ms",
                flush=True,
            )
    return results


def environment():
    info = {"python": platform.python_version(), "host": platform.node()}
    for name in ("jax", "jaxlib", "keras", "torch", "torchvision", "numpy"):
        try:
            info[name] = getattr(__import__(name), "__version__", None)
        except ImportError:
            info[name] = None
    try:
        import jax

        info["jax_devices"] = [d.device_kind for d in jax.devices()]
    except Exception as error:  # noqa: BLE001  (reported, not fatal)
        info["jax_devices"] = repr(error)
    try:
        import torch

        info["cuda_device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    return info


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import keras

    if keras.backend.backend() != "jax":
        sys.exit(f"Run with KERAS_BACKEND=jax. Received {keras.backend.backend()!r}.")
    runners = []
    if args.only in (None, "ours"):
        runners += [Ours(args, variant) for variant in args.variants]
    if args.only in (None, "torch"):
        runners.append(Torchvision(args))
    results = measure(runners, args)
    summary = {}
    for name, row in results.items():
        summary[name] = {
            "train_img_s": statistics.median(row["train"]),
            "infer_img_s": statistics.median(row["infer"]),
            "latency_ms": statistics.median(row["latency_ms"]),
            **{k: v for k, v in row.items() if k.startswith("first")},
            "runs": {k: row[k] for k in ("train", "infer", "latency_ms")},
        }
    print("\n| model | train img/s | infer img/s | batch-1 latency ms |")
    print("|---|---|---|---|")
    for name, row in summary.items():
        print(f"| {name} | {row['train_img_s']:.0f} | {row['infer_img_s']:.0f} | {row['latency_ms']:.2f} |")
    tv = next((row for name, row in summary.items() if name.startswith("torchvision")), None)
    ours = summary.get("keras_resnet v1.5 (JAX)")
    if tv and ours:
        print(
            f"\nours v1.5 / torchvision: train {ours['train_img_s'] / tv['train_img_s']:.3f}, "
            f"infer {ours['infer_img_s'] / tv['infer_img_s']:.3f}, "
            f"batch-1 latency {ours['latency_ms'] / tv['latency_ms']:.3f} (lower is better)"
        )
    if args.json:
        text = json.dumps({"args": vars(args), "environment": environment(), "results": summary}, indent=2)
        with open(args.json, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
