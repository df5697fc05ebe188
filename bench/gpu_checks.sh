#!/usr/bin/env bash
# The checks that need a CUDA GPU, as one script: the GPU benchmarks, then the engine tests with CUDA present.
# Usage (from the repository root, on a machine with a GPU and torch installed):
#   bash bench/gpu_checks.sh [OUTDIR]
# Logs go to OUTDIR (default: ./gpu-logs). Missing pure-Python dependencies may be provided as wheels in .whl/.
set -u -o pipefail
failed=0
out="${1:-gpu-logs}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:$PWD"
else
  export PYTHONPATH="$PWD"
fi
nvidia-smi -L | tee "$out/env.log"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(), 'cc', torch.cuda.get_device_capability())" | tee -a "$out/env.log"

echo "== bench_gpu: ResNet-18 CIFAR stem, FakeData 32 px" | tee "$out/bench.log"
timeout 240 python3 bench/bench_gpu.py --settings auto,bf16-nchw,compile 2>&1 | tee -a "$out/bench.log" || failed=1
echo "== bench_trainer on CUDA (fp32 both loops)" | tee -a "$out/bench.log"
timeout 60 python3 bench/bench_trainer.py --arch resnet18 --batch-size 256 --device cuda 2>&1 | tee -a "$out/bench.log" || failed=1
timeout 60 python3 bench/bench_trainer.py --arch lenet --batch-size 128 --batches 100 --device cuda 2>&1 \
  | tee -a "$out/bench.log" || failed=1
echo "== workbench train lenet/digits 5 epochs on CUDA" | tee -a "$out/bench.log"
( time timeout 60 python3 -m workbench train --arch lenet --dataset digits --epochs 5 --device cuda \
    --workspace /tmp/wb-ws --json ) 2>&1 | tail -6 | tee -a "$out/bench.log" || failed=1

echo "== engine tests with CUDA available" | tee "$out/pytest.log"
timeout 240 python3 -m pytest -q -p no:cacheprovider --ignore=tests/ui -o addopts="" -m "not slow" \
  -W ignore::pytest.PytestConfigWarning tests 2>&1 | tail -40 | tee -a "$out/pytest.log" || failed=1
exit "$failed"
