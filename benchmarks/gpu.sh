#!/usr/bin/env bash
# The GPU benchmarks of BENCHMARKS.md in one command, on any CUDA machine with
# JAX, PyTorch, torchvision and Keras 3 (TensorFlow is not needed):
#
#     bash benchmarks/gpu.sh OUTDIR
#
# Writes OUTDIR/{environment.txt, cifar.json, resnet50.json, cifar_fit.json,
# concurrent_*.json} and a log of each. Sections can be picked with
# GPU_BENCH="cifar resnet50 cifar_fit concurrent" (the default: all four).
set -uo pipefail
out="${1:?usage: bash benchmarks/gpu.sh OUTDIR}"
mkdir -p "$out"
cd "$(dirname "$0")/.."
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
sections=${GPU_BENCH:-cifar resnet50 cifar_fit concurrent}

{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  $python - <<'EOF'
import importlib, platform
print("python", platform.python_version())
for name in ("jax", "jaxlib", "keras", "torch", "torchvision", "numpy"):
    try:
        print(name, importlib.import_module(name).__version__)
    except Exception as error:
        print(name, "missing:", error)
import jax
print("jax devices", jax.devices())
EOF
  lscpu | grep -E "Model name|^CPU\(s\)"
} > "$out/environment.txt" 2>&1
cat "$out/environment.txt"

if [[ " $sections " == *" cifar "* ]]; then
  # Where a CIFAR step's time goes: scan (the zoo's loop) vs the same step
  # dispatched from Python, in both precisions.
  timeout "${CIFAR_TIMEOUT:-300}" $python -m benchmarks.gpu_cifar --depths 20,56,110 \
    --policies mixed_bfloat16,float32 --modes scan,step --repeats 3 --epoch-steps 200 --step-steps 100 \
    --json "$out/cifar.json" 2>&1 | tee "$out/cifar.log" | grep -v -i warning
fi

if [[ " $sections " == *" resnet50 "* ]]; then
  timeout "${RESNET50_TIMEOUT:-300}" $python -m benchmarks.gpu_resnet50 --batch 256 --steps 20 \
    --repeats "${RESNET50_REPEATS:-5}" --variants "${RESNET50_VARIANTS:-v1.5,v1}" \
    --json "$out/resnet50.json" 2>&1 | tee "$out/resnet50.log" | grep -v -i warning
fi

if [[ " $sections " == *" cifar_fit "* ]]; then
  # Keras fit on host-memory batches: the zoo's JAX path before scan_loop.
  timeout "${CIFAR_FIT_TIMEOUT:-120}" $python -m benchmarks.gpu_cifar --depths 20 --policies mixed_bfloat16 \
    --modes fit --repeats 2 --step-steps 100 --json "$out/cifar_fit.json" 2>&1 \
    | tee "$out/cifar_fit.log" | grep -v -i warning
fi

if [[ " $sections " == *" concurrent "* ]]; then
  # Do several trainings on one GPU add up? ResNet-20 scan step, 1 vs 3 processes.
  for n in 1 3; do
    for i in $(seq "$n"); do
      XLA_PYTHON_CLIENT_MEM_FRACTION=0.25 timeout 150 $python -m benchmarks.gpu_cifar --depths 20 \
        --policies mixed_bfloat16 --modes scan --repeats 7 --epoch-steps 500 \
        --json "$out/concurrent_${n}_$i.json" > "$out/concurrent_${n}_$i.log" 2>&1 &
    done
    wait
    grep -h "ms/step" "$out"/concurrent_"${n}"_*.log | sed "s/^/$n at once: /"
  done
fi
