#!/bin/sh
# GPU test: batchscore on the GPU gives the bits it gives on the CPU, for
# every bundled XGBoost fixture (float sums, DART weights, categorical
# splits, several classes; LightGBM models, whose double thresholds and
# leaves the GPU kernel does not hold, are scored on the CPU: checked below),
# as predictions and margins, in chunks that cut the copy/compute pipeline
# at odd places; --device picks where ranks score, and more ranks than GPUs
# are refused under --device cuda unless --allow-gpu-sharing. With
# cuBLAS, the network fixtures through dense-cublaslt: within 1e-5 of the
# CPU, and bitwise the same whatever the chunks.
# Skipped (77) without an NVIDIA GPU or in a build without CUDA. The
# kernels themselves are checked against the reference by test_kernels and
# test_dense, which include the GPU kernels wherever a GPU is.
. "$(dirname "$0")/lib.sh"

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q GPU; then
  echo "SKIP: no NVIDIA GPU"
  exit 77
fi
grep -q "define BS_HAVE_CUDA 1" "$top_builddir/config.h" 2>/dev/null || {
  echo "SKIP: batchscore was built without CUDA (configure --with-cuda)"
  exit 77
}
gpus=$(nvidia-smi -L | grep -c GPU)
# A build that cannot reach the GPU (CUDA does not start under
# AddressSanitizer unless ASAN_OPTIONS has protect_shadow_gap=0) skips.
if ! run_bs 1 --quiet --model "$DATA/example/model.json" --input "$DATA/example/features.h5" \
  --output "$WORK/probe.h5" --device cuda && grep -q "no GPU found" "$WORK/err"; then
  echo "SKIP: batchscore sees no GPU here: $(cat "$WORK/err")"
  exit 77
fi

# same_bits TAG MODEL INPUT ARGS...: --device cuda and --device cpu agree.
same_bits() {
  tag=$1 model=$2 input=$3
  shift 3
  for dev in cpu cuda; do
    if ! run_bs 1 --quiet --model "$model" --input "$input" --output "$WORK/$tag-$dev.h5" \
      --device "$dev" --stats "$WORK/$tag-$dev.json" "$@"; then
      fail "$tag --device $dev: $(cat "$WORK/err")"
      return
    fi
  done
  if ! grep -q '"kernel": *"tree-cuda"' "$WORK/$tag-cuda.json"; then
    fail "$tag: --device cuda did not score with tree-cuda: $(cat "$WORK/$tag-cuda.json")"
  elif res=$("$CMP" --exact "$WORK/$tag-cuda.h5" "$WORK/$tag-cpu.h5"); then
    ok "$tag: GPU = CPU, bit for bit"
  else
    fail "$tag: $res"
  fi
  rm -f "$WORK/$tag-cpu.h5" "$WORK/$tag-cuda.h5"
}

for model in "$DATA"/xgb/*.json; do
  [ -f "$model" ] || continue
  case=$(basename "$model" | sed 's/\.[a-z]*$//')
  dir=$(basename "$(dirname "$model")")
  input=${model%.*}.h5
  same_bits "$dir-$case" "$model" "$input"
  same_bits "$dir-$case-margin" "$model" "$input" --output-margin --chunk-rows 7
done

# LightGBM: --device auto scores on the CPU; --device cuda says why not.
lgb=$DATA/lgb/bc_binary
if run_bs 1 --quiet --model "$lgb.txt" --input "$lgb.h5" --output "$WORK/lgb.h5" \
  --stats "$WORK/lgb.json" && ! grep -q '"kernel": *"tree-cuda"' "$WORK/lgb.json"; then
  ok "LightGBM under --device auto: a CPU kernel"
else
  fail "LightGBM under --device auto: $(cat "$WORK/err" "$WORK/lgb.json")"
fi
if ! run_bs 1 --quiet --model "$lgb.txt" --input "$lgb.h5" --output "$WORK/lgb2.h5" \
  --device cuda && grep -q "no GPU kernel can score this model" "$WORK/err"; then
  ok "LightGBM under --device cuda: refused, $(grep batchscore: "$WORK/err")"
else
  fail "LightGBM under --device cuda: $(cat "$WORK/err")"
fi

# Forests with double leaves (CatBoost, scikit-learn's) likewise.
cb=$DATA/catboost/cb_bc_logloss
if run_bs 1 --quiet --model "$cb.json" --input "$cb.h5" --output "$WORK/cb.h5" \
  --stats "$WORK/cb.json" && ! grep -q '"kernel": *"tree-cuda"' "$WORK/cb.json"; then
  ok "CatBoost under --device auto: a CPU kernel"
else
  fail "CatBoost under --device auto: $(cat "$WORK/err" "$WORK/cb.json")"
fi

# 50,000 rows in one chunk: the pipeline splits it across both streams.
same_bits example-one-chunk "$DATA/example/model.json" "$DATA/example/features.h5" \
  --chunk-rows 50000
same_bits example-odd-chunks "$DATA/example/model.json" "$DATA/example/features.h5" \
  --chunk-rows 33333 --threads 3

# Networks through dense-cublaslt (a build with cuBLAS): every bundled
# network fixture it takes (dense layers only) gives margins within 1e-5 of
# the CPU's (relative, or absolute near 0, as oracle-nn.sh compares
# logits: the library sums in its own order), and the same bits whether a
# chunk is the whole input or 7 rows.
if grep -q "define BS_HAVE_CUBLAS 1" "$top_builddir/config.h" 2>/dev/null; then
  taken=0
  for model in "$DATA"/nn/*.model.h5; do
    case=$(basename "$model" .model.h5)
    input=$DATA/nn/$case.h5
    lt=$WORK/$case-lt.h5
    if ! run_bs 1 --quiet --model "$model" --input "$input" --output "$lt" --output-margin \
      --device cuda --kernel dense-cublaslt --stats "$WORK/$case-lt.json"; then
      if grep -q "cannot run this model" "$WORK/err"; then
        echo "($case: not only dense layers, not for dense-cublaslt)"
      else
        fail "$case dense-cublaslt: $(cat "$WORK/err")"
      fi
      continue
    fi
    taken=$((taken + 1))
    if ! grep -q '"kernel": *"dense-cublaslt"' "$WORK/$case-lt.json"; then
      fail "$case: --kernel dense-cublaslt did not score with it"
    elif ! run_bs 1 --quiet --model "$model" --input "$input" --output "$WORK/$case-cpu.h5" \
      --output-margin --device cpu; then
      fail "$case --device cpu: $(cat "$WORK/err")"
    elif res=$("$CMP" --rtol 1e-5 --atol 1e-5 "$lt" "$WORK/$case-cpu.h5"); then
      ok "$case: dense-cublaslt margins = CPU's within 1e-5: $res"
    else
      fail "$case: dense-cublaslt vs CPU: $res"
    fi
    if ! run_bs 1 --quiet --model "$model" --input "$input" --output "$WORK/$case-lt7.h5" \
      --output-margin --device cuda --kernel dense-cublaslt --chunk-rows 7 --threads 3; then
      fail "$case dense-cublaslt, 7-row chunks: $(cat "$WORK/err")"
    elif res=$("$CMP" --exact "$WORK/$case-lt7.h5" "$lt"); then
      ok "$case: dense-cublaslt in 7-row chunks = one chunk, bit for bit"
    else
      fail "$case: dense-cublaslt in 7-row chunks vs one chunk: $res"
    fi
  done
  [ "$taken" -gt 0 ] || fail "dense-cublaslt took none of the network fixtures"
fi

# More ranks than GPUs: refused under --device cuda, shared when allowed,
# the extra ranks on the CPU under auto; the bits never change.
np=$((gpus + 1))
m=$DATA/example/model.json in=$DATA/example/features.h5
run_bs 1 --quiet --model "$m" --input "$in" --output "$WORK/base.h5" --device cpu ||
  fail "baseline: $(cat "$WORK/err")"
for dev in cuda; do
  if run_bs "$np" --quiet --model "$m" --input "$in" --output "$WORK/x.h5" --device $dev; then
    fail "$np ranks on $gpus GPU(s) with --device $dev were not refused"
  elif grep -q -- "--allow-gpu-sharing" "$WORK/err"; then
    ok "$np ranks on $gpus GPU(s), --device $dev: refused with a hint"
  else
    fail "$np ranks on $gpus GPU(s), --device $dev: unclear error: $(cat "$WORK/err")"
  fi
done
for args in "--device cuda --allow-gpu-sharing" "--device auto"; do
  # shellcheck disable=SC2086
  if ! run_bs "$np" --quiet --model "$m" --input "$in" --output "$WORK/x.h5" --force $args \
    --chunk-rows 4096; then
    fail "$np ranks, $args: $(cat "$WORK/err")"
  elif res=$("$CMP" --exact "$WORK/x.h5" "$WORK/base.h5"); then
    ok "$np ranks, $args: bitwise the CPU's output"
  else
    fail "$np ranks, $args: $res"
  fi
done
if run_bs 1 --quiet --model "$m" --input "$in" --output "$WORK/x.h5" --force \
  --device cpu --kernel cuda; then
  fail "--device cpu --kernel cuda was accepted"
elif grep -q "runs on a GPU" "$WORK/err"; then
  ok "--device cpu --kernel cuda: refused"
else
  fail "--device cpu --kernel cuda: $(cat "$WORK/err")"
fi
finish
