#!/usr/bin/env bash
# The GPU checks in one run, for a machine with a CUDA GPU and PyTorch (a borrowed GPU may be lent for
# minutes only, so every step has its own time limit and writes its log as it goes):
#   1. the environment: GPU, torch, CuPy, cuML, NCCL
#   2. tests/test_gpu.py: CuPy Ledoit-Wolf vs scikit-learn, the cuML backend, clustergan on CUDA in fp32 and
#      bf16 autocast (checkpoint loads and samples on the CPU), a Ray Train worker on the GPU with NCCL
#   3. one epoch of each facades run of the gpu preset (256 px, batch 1, Ray Train on the visible GPUs),
#      timed, not evaluated: ray_jobs/reproduce.py --preset gpu --epochs 1 --train-only
#   4. seconds per training step at 256 px, fp32 and bf16: benchmarks/step_time.py --device cuda
#
#   OUT=runs/gpu_smoke FACADES=../shared/datasets/facades bash benchmarks/gpu_smoke.sh
#
# On the project's device machine (no network, a PyTorch image without Ray) the packages it lacks travel in
# an ignored .gpu/ folder (wheels, a Ray 2.60 install, the encoder's weight package, facades); see
# docs/gpu_smoke.md for how it was staged and what the last run saw.
set -uo pipefail
OUT=${OUT:-runs/gpu_smoke}
FACADES=${FACADES:-../shared/datasets/facades}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 RAY_AUTH_MODE=${RAY_AUTH_MODE:-token}
export CLUSTERGAN_CACHE=${CLUSTERGAN_CACHE:-/tmp/clustergan-cache}
PY=${PY:-python3}

if [ -d .gpu ]; then  # device staging: install what the image lacks into /tmp/site
  t0=$(date +%s)
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/whl/*.whl
  tar -xJf .gpu/ray_pruned.tar.xz -C /tmp/site
  cp -r .gpu/site/. /tmp/site/
  export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
  [ -d .gpu/facades ] && FACADES=.gpu/facades
  echo "staged .gpu/ into /tmp/site in $(( $(date +%s) - t0 )) s"
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

{
  echo "## 1. environment"
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  $PY - <<'EOF'
import importlib, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0),
      "nccl", ".".join(map(str, torch.cuda.nccl.version())), "bf16", torch.cuda.is_bf16_supported())
for name in ("cupy", "cuml", "ray", "timm", "sklearn", "lpips", "pydantic"):
    try:
        print(name, getattr(importlib.import_module(name), "__version__", "?"))
    except Exception as e:  # noqa: BLE001
        print(name, "NOT AVAILABLE:", type(e).__name__, str(e)[:120])
from clustergan.clustering.backends import cuda_usable, cuml_usable, get_backend
print("cuda_usable", cuda_usable(), "cuml_usable", cuml_usable(), "auto backend ->", get_backend("auto").name)
EOF
  echo "## 2. tests/test_gpu.py"
  timeout 130 $PY -m pytest -q -rs -p no:cacheprovider tests/test_gpu.py tests/test_clustering.py -k "gpu or backend or cuda"
  echo "pytest exit $?"
} > "$OUT/env_and_tests.log" 2>&1

echo "## 3. gpu preset, facades, 1 epoch per run" > "$OUT/reproduce.log"
timeout 220 $PY ray_jobs/reproduce.py --preset gpu --study facades --seeds 0 --epochs 1 --train-only \
  --facades "$FACADES" --out /tmp/reproduce-gpu-smoke >> "$OUT/reproduce.log" 2>&1
echo "reproduce exit $?" >> "$OUT/reproduce.log"
$PY - "$OUT" <<'EOF'
import json, shutil, sys
from pathlib import Path
out, root = Path(sys.argv[1]), Path("/tmp/reproduce-gpu-smoke")
summary = {"machine": json.loads((root / "machine.json").read_text()) if (root / "machine.json").is_file() else None,
           "runs": {}}
for record in sorted(root.glob("facades/*/seed0/reproduce.json")):
    run = record.parent
    summary["runs"][run.parent.name] = {**json.loads(record.read_text()),
                                        "checkpoints": sorted(p.name for p in (run / "checkpoints").glob("*.pt"))}
    for grid in sorted((run / "samples").glob("*.png"))[-1:]:
        shutil.copy(grid, out / f"facades_{run.parent.name}_{grid.name}")
(out / "reproduce_summary.json").write_text(json.dumps(summary, indent=2, default=str))
EOF

echo "## 4. step time, 256 px, batch 1" > "$OUT/step_time.log"
timeout 130 $PY benchmarks/step_time.py --device cuda --sizes 256 --amp none bf16 --steps 20 --warmup 5 \
  --json "$OUT/step_time.json" >> "$OUT/step_time.log" 2>&1
echo "step_time exit $?" >> "$OUT/step_time.log"
ls -la "$OUT"
