#!/usr/bin/env bash
# Run HERE (the development machine, which reaches PyPI): put into .whl/ the wheels that streamlabel's GPU checks need
# and the GPU machine's image lacks. That machine reaches no network; `run` carries .whl/ there (64 MiB in all with
# the working tree). The image already has torch, transformers, numpy, opencv, typer, rich, httpx,
# prometheus-client, pytest and hypothesis (/work/.library/device/KINDS.md).
#   bash scripts/device/wheels.sh          the base set (about 41 MB, PyAV's 36 MB wheel included): every step but
#                                          `share`
#   bash scripts/device/wheels.sh train    PyAV swapped for polars (about 60 MB), which Ultralytics' trainer
#                                          imports: the `share` step (a real `streamlabel train` child)
set -euo pipefail
SET=${1:-base}
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
rm -rf .whl && mkdir -p .whl
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
# versions as installed here, so the GPU run uses the code the tests ran against
pin() { "$PY" -c "import importlib.metadata as m; print('$1==' + m.version('$1'))"; }
binary=(annotated-types defusedxml hydra-core omegaconf pydantic pydantic-core pydeprecate supervision typing-inspection
        ultralytics ultralytics-thop filterpy paho-mqtt ollama pycocotools)
case $SET in
  base) binary+=(av) ;;
  train) binary+=(polars polars-runtime-32) ;;
  *) echo "unknown set $SET (base or train)"; exit 2 ;;
esac
for name in "${binary[@]}"; do
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" \
    -d .whl "$(pin "$name")"
done
# sdists only on PyPI: pure Python, built into wheels here (sam2 without its optional CUDA extension)
SAM2_BUILD_CUDA=0 "$PY" -m pip wheel -q --no-deps --no-build-isolation -w .whl "$(pin sam2)" "$(pin antlr4-python3-runtime)" "$(pin iopath)"
du -sh .whl
