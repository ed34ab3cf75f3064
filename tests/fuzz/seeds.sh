#!/bin/sh
# Makes the seed corpus of every harness under OUT/seeds/<harness>/: the
# models in data/ (cut small, or as HDF5 recipes) and the hand-written
# seeds kept in tests/fuzz/seeds/<harness>/.
# Usage: tests/fuzz/seeds.sh SRCDIR MKMODEL OUT
set -eu
src=$1 mk=$2 out=$3/seeds
rm -rf "$out"
for h in "$src"/tests/fuzz/fuzz_*.c; do
  mkdir -p "$out/$(basename "$h" .c | sed 's/^fuzz_//')"
done
for d in "$src"/tests/fuzz/seeds/*/; do
  [ -d "$d" ] && mkdir -p "$out/$(basename "$d")" && cp "$d"* "$out/$(basename "$d")/"
done
for f in "$src"/data/xgb/*.json "$src"/data/example/model.json; do
  n=$(basename "$(dirname "$f")")_$(basename "$f")
  # jansson reads no bare NaN: such a model is kept whole
  "$mk" trim-xgb "$f" 4 >"$out/xgboost/$n" 2>/dev/null || cp "$f" "$out/xgboost/$n"
  cp "$out/xgboost/$n" "$out/json_scan/$n"
done
for f in "$src"/data/lgb/*.txt; do
  "$mk" trim-lgb "$f" 3 >"$out/lightgbm/$(basename "$f")"
done
cp "$out/xgboost/xgb_bc_logistic.json" "$out/lightgbm/iris_ova.txt" "$out/detect/"
for f in "$src"/data/nn/k*.model.h5; do
  n=$(basename "$f" .model.h5)
  "$mk" dump "$f" 64 >"$out/keras/$n.recipe"
  sed -n 's/^attr \/ model_config str //p' "$out/keras/$n.recipe" >"$out/keras_config/$n.json"
done
for f in "$src"/data/nn/sk_*.model.h5; do
  "$mk" dump "$f" 64 >"$out/native/$(basename "$f" .model.h5).recipe"
done
# .keras archives whole, and their config.json without the initializers,
# regularizers and the like (noise to a fuzzer), where Python is there.
cp "$src"/data/nn/*.model.keras "$src"/tests/cases/*/model.keras "$out/keras_zip/"
for f in "$src"/data/nn/*.model.keras; do
  python3 - "$f" "$out/keras_dag/$(basename "$f" .model.keras).json" <<'PY' || true
import json, sys, zipfile
noise = ("initializer", "regularizer", "constraint", "registered_name", "module",
         "build_config", "compile_config", "trainable", "shared_object_id")
def clean(v):
    if isinstance(v, dict):
        return {k: clean(x) for k, x in v.items() if not any(n in k for n in noise)}
    return [clean(x) for x in v] if isinstance(v, list) else v
config = json.loads(zipfile.ZipFile(sys.argv[1]).read("config.json"))
open(sys.argv[2], "w").write(json.dumps(clean(config), separators=(",", ":")))
PY
done
cp "$src"/data/nn/sk_iris_mlp.model.h5 "$src"/data/nn/sk_diabetes_linear.model.h5 \
  "$src"/data/nn/k3_iris_layers.model.h5 "$src"/data/nn/k2_iris_layers.model.h5 "$out/hdf5/"
# ONNX: the small models of data/onnx (under 4 KB) and the refusals.
for f in "$src"/data/onnx/*.onnx "$src"/tests/cases/onnx-*/model.onnx; do
  [ "$(wc -c <"$f")" -lt 4096 ] || continue
  cp "$f" "$out/onnx/$(basename "$(dirname "$f")")_$(basename "$f")"
done
echo "fuzz: seeds in $out"
