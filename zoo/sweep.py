"""Runs several recipes on one machine, a few at a time: `python -m zoo.sweep`.

    python -m zoo.sweep --root=runs --parallel=3 --dataset=folder:/data/cifar10_jpeg \\
        --mixed_precision=mixed_bfloat16 cifar10_resnet20:seed=0 cifar10_resnet20:seed=1 \\
        cifar10_resnet56 cifar10_plain56

Each RUN is a recipe name, optionally followed by `:key=value,...` recipe
overrides (as `--set` takes them). Run i trains with `python -m zoo.train`
in its own process, in `ROOT/<name>[_<key><value>...]`, its output in
`train.log` there. Runs start in the order given, at most `--parallel` at
once. A finished run is skipped; an unfinished one resumes from its
checkpoint (so the same command continues a sweep that was stopped).

`--deadline=S` stops the sweep after S seconds: no run starts after it and
running ones are killed (each resumes from its last checkpoint next time).
Under JAX each process gets an equal share of the GPU's memory
(`XLA_PYTHON_CLIENT_MEM_FRACTION`) unless that is set already.
"""

import json
import os
import pathlib
import subprocess
import sys
import time

from absl import app
from absl import flags

from zoo import cli
from zoo import recipes

FLAGS = flags.FLAGS


def parse_run(spec):
    """'name:key=v,key2=w' -> (name, ["key=v", "key2=w"], directory name).

    Raises:
        ValueError: for an unknown recipe or a malformed override.
    """
    name, _, rest = spec.partition(":")
    recipe = recipes.get(name)
    overrides = [item for item in rest.split(",") if item] if rest else []
    recipes.override(recipe, overrides)  # raises on a bad key or value
    suffix = "".join(f"_{k}{v}" for k, _, v in (o.partition("=") for o in overrides))
    return name, overrides, name + suffix


def is_finished(workdir):
    """Whether `workdir` holds a run whose results reach its recipe's steps.

    Damaged files are left to `zoo.train`, which names them: not finished.
    """
    workdir = pathlib.Path(workdir)
    try:
        results = json.loads((workdir / "results.json").read_text())
        config = json.loads((workdir / "config.json").read_text())
        return results.get("steps") == config["recipe"]["steps"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def command(name, overrides, workdir, extra_flags):
    return (
        [sys.executable, "-m", "zoo.train", f"--recipe={name}", f"--workdir={workdir}"]
        + [f"--set={o}" for o in overrides]
        + list(extra_flags)
    )


def sweep(runs, root, parallel, extra_flags, deadline=None, poll_s=2.0):
    """Runs `runs` [(name, overrides, dirname)], at most `parallel` at once.

    Returns:
        {dirname: "finished" | "failed (rc N)" | "stopped" | "not started"}.
    """
    root = pathlib.Path(root)
    env = dict(os.environ)
    if env.get("KERAS_BACKEND") == "jax":
        env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", f"{0.9 / parallel:.3f}")
    start = time.monotonic()
    pending = list(runs)
    running = {}
    status = {}
    while pending or running:
        expired = deadline is not None and time.monotonic() - start > deadline
        for dirname, (process, log) in list(running.items()):
            rc = process.poll()
            if rc is None and not expired:
                continue
            if rc is None:
                process.kill()
                process.wait()
                status[dirname] = "stopped"
            else:
                status[dirname] = "finished" if rc == 0 else f"failed (rc {rc})"
            log.close()
            del running[dirname]
            print(f"zoo.sweep: {dirname}: {status[dirname]}", flush=True)
        while pending and len(running) < parallel and not expired:
            name, overrides, dirname = pending.pop(0)
            workdir = root / dirname
            if is_finished(workdir):
                status[dirname] = "finished"
                print(f"zoo.sweep: {dirname}: finished before", flush=True)
                continue
            workdir.mkdir(parents=True, exist_ok=True)
            log = open(workdir / "train.log", "a")
            process = subprocess.Popen(
                command(name, overrides, workdir, extra_flags),
                stdout=log, stderr=subprocess.STDOUT, env=env,
            )
            running[dirname] = (process, log)
            print(f"zoo.sweep: {dirname}: started", flush=True)
        if expired:
            for name, overrides, dirname in pending:
                status[dirname] = "not started"
            pending = []
        if running:
            time.sleep(poll_s)
    return status


def summary(root, dirnames):
    """A markdown table of the runs' results.json."""
    lines = ["| run | test acc | val acc | steps | wall s | img/s |", "|---|---|---|---|---|---|"]
    for dirname in dirnames:
        path = pathlib.Path(root) / dirname / "results.json"
        if not path.exists():
            lines.append(f"| {dirname} | - | - | - | - | - |")
            continue
        r = json.loads(path.read_text())
        lines.append(
            f"| {dirname} | {r['test_accuracy']:.4f} | {r['val_accuracy']} | {r['steps']} | "
            f"{r['wall_time_s']:.0f} | {r['images_per_s']:.0f} |"
        )
    return "\n".join(lines)


def main(argv):
    if len(argv) < 2:
        cli.fail("Give at least one RUN (a recipe name, optionally name:key=value,...).", "zoo.sweep")
    if FLAGS.parallel < 1:
        cli.fail(f"--parallel must be >= 1. Received {FLAGS.parallel}.", "zoo.sweep")
    try:
        runs = [parse_run(spec) for spec in argv[1:]]
    except ValueError as error:
        cli.fail(str(error), "zoo.sweep")
    extra = [f"--dataset={FLAGS.dataset}", f"--mixed_precision={FLAGS.mixed_precision}"]
    extra += [f"--{flag}" for flag in FLAGS.flag]
    root = cli.expand(FLAGS.root)
    status = sweep(runs, root, FLAGS.parallel, extra, FLAGS.deadline)
    print(summary(root, [r[2] for r in runs]))
    failed = [d for d, s in status.items() if s.startswith("failed")]
    if failed:
        raise SystemExit(f"zoo.sweep: failed runs: {failed} (see their train.log)")


def define_flags():
    flags.DEFINE_string("root", None, "Directory that holds one workdir per run.", required=True)
    flags.DEFINE_integer("parallel", 1, "Runs at once.")
    flags.DEFINE_string("dataset", "digits", "--dataset of every run.")
    flags.DEFINE_string("mixed_precision", "float32", "--mixed_precision of every run.")
    flags.DEFINE_float("deadline", None, "Seconds after which the sweep stops (runs resume later).")
    flags.DEFINE_multi_string("flag", [], "Another zoo.train flag for every run, e.g. --flag=loop=scan.")


if __name__ == "__main__":
    define_flags()
    app.run(main)
