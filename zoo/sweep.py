"""Runs several recipes on one machine, a few at a time: `python -m zoo.sweep`.

    python -m zoo.sweep --root=runs --parallel=3 --dataset=folder:/data/cifar10_jpeg \\
        --mixed_precision=mixed_bfloat16 cifar10_resnet20:seed=0 cifar10_resnet20:seed=1 \\
        cifar10_resnet56 cifar10_plain56

Each RUN is a recipe name, optionally followed by `:key=value,...` recipe
overrides (as `--set` takes them; a tuple needs no quotes:
`lr_decay_at=0.5,0.75`). Run i trains with `python -m zoo.train` in its
own process, in `ROOT/<name>[_<key><value>...]`, its output in `train.log`
there; override values may hold only letters, digits and `. , + -`, so the
directory stays inside ROOT, and two RUNs may not share a directory. Runs
start in the order given, at most `--parallel` at once. A run finished
before (its config.json is this recipe with these overrides on this
dataset, its results.json reaches its steps) is skipped; anything else is
left to zoo.train, which resumes an unfinished run from its checkpoint (so
the same command continues a sweep that was stopped) and refuses a
directory that holds a different run.

`--deadline=S` (S > 0) stops the sweep after S seconds: no run starts after
it and running ones are killed (each resumes from its last checkpoint next
time). If the sweep itself stops (an error, Ctrl-C), it kills its runs too.
Under JAX each process gets an equal share of the GPU's memory
(`XLA_PYTHON_CLIENT_MEM_FRACTION`) unless that is set already.
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import time

from absl import flags

from keras_resnet import specs
from zoo import cli
from zoo import recipes
from zoo import run

FLAGS = flags.FLAGS


# What an override value may hold where it becomes part of a directory name
# (numbers, booleans, "none", shortcut letters and comma-separated tuples).
_NAME_SAFE = re.compile(r"[A-Za-z0-9.,+-]*")


def parse_run(spec):
    """'name:key=v,key2=w' -> (name, ["key=v", "key2=w"], directory name).

    A comma followed by something that is not `key=` continues the value
    before it, so tuple values need no quoting: `lr_decay_at=0.5,0.75`.

    Raises:
        ValueError: for an unknown recipe, a malformed override, or a value
            that cannot be part of a directory name.
    """
    name, _, rest = spec.partition(":")
    recipe = recipes.get(name)
    overrides = []
    for item in rest.split(",") if rest else []:
        if "=" in item or not overrides:
            overrides.append(item)
        else:
            overrides[-1] += "," + item
    overrides = [item for item in overrides if item]
    recipes.override(recipe, overrides)  # raises on a bad key or value
    parts = [o.partition("=") for o in overrides]
    for key, _, value in parts:
        if not _NAME_SAFE.fullmatch(value):
            raise ValueError(
                f"RUN {spec!r}: the value of {key!r} becomes part of the run's directory name, "
                "so it may hold only letters, digits and . , + -. Received "
                f"{key}={value!r}. Give data paths with --dataset."
            )
    return name, overrides, name + "".join(f"_{k}{v}" for k, _, v in parts)


def check_runs(runs, root):
    """Refuses runs that would share a workdir, or a workdir outside `root`.

    Two runs in one directory would resume each other's checkpoints; the
    sweep tracks one process per directory.

    Raises:
        ValueError: naming the runs.
    """
    seen = set()
    root = pathlib.Path(root).resolve()
    for _, _, dirname in runs:
        if dirname in seen:
            raise ValueError(
                f"Two RUNs train in {root / dirname}: each run needs its own directory "
                "(give each spec once; seeds differ by :seed=N)."
            )
        seen.add(dirname)
        if (root / dirname).resolve().parent != root:
            raise ValueError(f"RUN directory {dirname!r} is not a folder of --root={root}.")


def command(name, overrides, workdir, extra_flags, seeds=None):
    return (
        [sys.executable, "-m", "zoo.train", f"--recipe={name}", f"--workdir={workdir}"]
        + [f"--set={o}" for o in overrides]
        + ([f"--seeds={','.join(map(str, seeds))}"] if seeds is not None else [])
        + list(extra_flags)
    )


def sweep(runs, root, parallel, extra_flags, deadline=None, poll_s=2.0, dataset=None, seeds=None):
    """Runs `runs` [(name, overrides, dirname)], at most `parallel` at once.

    Args:
        dataset: the runs' --dataset (also in `extra_flags`), so that a run
            finished on another dataset is not taken for this one.
        seeds: train each run as a group of these seeds in one program
            (`zoo.train --seeds`); the runs may then not set `seed`.

    Returns:
        {dirname: "finished" | "failed (rc N)" | "stopped" | "not started"}.

    Raises:
        ValueError: `parallel` < 1, a `deadline` that is not > 0, two runs
            in one directory, or a `root` that cannot be created.
    """
    if specs.integer(parallel) is None or parallel < 1:
        raise ValueError(f"--parallel must be an int >= 1. Received {parallel!r}.")
    parallel = specs.integer(parallel)
    if deadline is not None and not deadline > 0:
        raise ValueError(f"--deadline must be a number of seconds > 0. Received {deadline!r}.")
    check_runs(runs, root)
    if seeds is not None:
        for name, overrides, dirname in runs:
            if any(o.partition("=")[0].strip() == "seed" for o in overrides):
                raise ValueError(
                    f"RUN {dirname} sets seed, but --seeds gives every run its seeds: drop "
                    ":seed=... (or drop --seeds to train one run per spec)."
                )
    cli.make_directory(root, "--root")
    root = pathlib.Path(root)
    env = dict(os.environ)
    if env.get("KERAS_BACKEND") == "jax":
        env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", f"{0.9 / parallel:.3f}")
    start = time.monotonic()
    pending = list(runs)
    running = {}
    status = {}
    try:
        while pending or running:
            expired = deadline is not None and time.monotonic() - start > deadline
            _collect(running, status, expired)
            while pending and len(running) < parallel and not expired:
                name, overrides, dirname = pending.pop(0)
                if run.is_finished(root / dirname, name, overrides, dataset, seeds):
                    status[dirname] = "finished"
                    print(f"zoo.sweep: {dirname}: finished before", flush=True)
                    continue
                running[dirname] = _start(root / dirname, command(name, overrides, root / dirname,
                                                                  extra_flags, seeds), env)
                print(f"zoo.sweep: {dirname}: started", flush=True)
            if expired:
                status.update({dirname: "not started" for _, _, dirname in pending})
                pending = []
            if running:
                time.sleep(poll_s)
    finally:
        # An error or Ctrl-C in the sweep must not leave a zoo.train running untracked.
        for dirname, (process, log) in running.items():
            process.kill()
            process.wait()
            log.close()
            status[dirname] = "stopped"
    return status


def _start(workdir, argv, env):
    """Starts one zoo.train in `workdir`, its output appended to its train.log: (process, log)."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = open(workdir / run.TRAIN_LOG, "a")
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env), log


def _collect(running, status, expired):
    """Records the runs that ended (and kills those still running past the deadline) in `status`."""
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


def summary(root, dirnames, status=None):
    """A markdown table of the runs' results.json.

    A missing value is "-"; a results.json that is not a JSON object is
    named in the row rather than stopping the summary.

    Args:
        root: the sweep's --root.
        dirnames: the runs' directories under it, one row each.
        status: what `sweep` returned ({dirname: status}), or None. A run
            that did not finish in this sweep (failed, stopped, not
            started) shows its status, and the error its train.log ends
            with, instead of a results.json: what its directory holds may
            be another run's (zoo.train refuses such a directory).
    """
    lines = ["| run | test acc | val acc | steps | wall s | img/s |", "|---|---|---|---|---|---|"]
    columns = (("test_accuracy", ".4f"), ("val_accuracy", ".4f"), ("steps", "d"),
               ("wall_time_s", ".0f"), ("images_per_s", ".0f"))
    for dirname in dirnames:
        if status is not None and status.get(dirname) != "finished":
            lines.append(f"| {dirname} | {_not_finished(pathlib.Path(root) / dirname, status.get(dirname))} "
                         "| | | | |")
            continue
        path = pathlib.Path(root) / dirname / run.RESULTS
        if not path.exists():
            lines.append(f"| {dirname} | - | - | - | - | - |")
            continue
        try:
            results = json.loads(path.read_text())
            if not isinstance(results, dict):
                raise ValueError(f"holds {type(results).__name__}, not an object")
        except (OSError, UnicodeDecodeError, ValueError) as error:
            lines.append(f"| {dirname} | {path} is damaged ({error}) | | | | |")
            continue
        cells = [_cell(results.get(key), spec) for key, spec in columns]
        if results.get("kind") == "seeds":  # A group: the mean over its seeds.
            std = results.get("test_error_std")
            cells[0] = (f"{_cell(results.get('test_accuracy'), '.4f')} (mean of "
                        f"{len(results.get('seeds', []))} seeds"
                        + (f", error std {100 * std:.2f}%" if isinstance(std, float) else "") + ")")
        lines.append(f"| {dirname} | {' | '.join(cells)} |")
    return "\n".join(lines)


def _not_finished(workdir, state):
    """A row's text for a run that did not finish in this sweep: its state and last error."""
    log = workdir / run.TRAIN_LOG
    try:
        errors = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("Error: ")]
    except OSError:
        errors = []
    text = f"{state or 'not run'}"
    if errors:
        error = errors[-1][len("Error: "):]
        text += f": {error[:200]}{'...' if len(error) > 200 else ''}"
    if log.exists():
        text += f" (see {log})"
    return text.replace("|", "\\|")


def _cell(value, spec):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-" if value is None else str(value)
    return format(value, spec) if spec != "d" or isinstance(value, int) else str(value)


def main(argv):
    if len(argv) < 2:
        cli.fail("Give at least one RUN (a recipe name, optionally name:key=value,...).", "zoo.sweep")
    extra = [f"--dataset={FLAGS.dataset}", f"--mixed_precision={FLAGS.mixed_precision}"]
    extra += [f"--{flag}" for flag in FLAGS.flag]
    root = cli.expand(FLAGS.root)
    try:
        runs = [parse_run(spec) for spec in argv[1:]]
        seeds = None
        if FLAGS.seeds is not None:
            from zoo import seeds as seeds_lib

            seeds = seeds_lib.parse(FLAGS.seeds)
        status = sweep(runs, root, FLAGS.parallel, extra, FLAGS.deadline, dataset=FLAGS.dataset,
                       seeds=seeds)
    except ValueError as error:
        cli.fail(str(error), "zoo.sweep")
    except OSError as error:
        cli.fail(cli.os_error(error))
    print(summary(root, [r[2] for r in runs], status))
    failed = [d for d, s in status.items() if s.startswith("failed")]
    if failed:
        raise SystemExit(f"zoo.sweep: failed runs: {failed} (see their {run.TRAIN_LOG})")


def define_flags():
    flags.DEFINE_string("root", None, "Directory that holds one workdir per run.", required=True)
    flags.DEFINE_integer("parallel", 1, "Runs at once.")
    flags.DEFINE_string("dataset", "digits", "--dataset of every run.")
    flags.DEFINE_string("mixed_precision", "float32", "--mixed_precision of every run.")
    flags.DEFINE_float("deadline", None, "Seconds after which the sweep stops (runs resume later).")
    flags.DEFINE_multi_string("flag", [], "Another zoo.train flag for every run, e.g. --flag=loop=scan.")
    flags.DEFINE_string(
        "seeds", None,
        "Comma-separated seeds: each RUN trains as a group of these seeds in one program "
        "(zoo.train --seeds; KERAS_BACKEND=jax).",
    )


if __name__ == "__main__":
    define_flags()
    cli.run(main, "zoo.sweep", "interrupted. Its runs were stopped; each keeps its last checkpoint "
            "and resumes from it when the same sweep runs again.")
