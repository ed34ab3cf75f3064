#!/bin/sh
# Oracle test for networks and scikit-learn models: every fixture in
# data/nn/ (real Keras and scikit-learn models; Keras ones as .h5 and/or
# .keras) and data/sk/ (scikit-learn tree ensembles and pipelines) scored by
# batchscore matches the predictions the
# library itself stored next to it to 1e-5 relative or 1e-6 absolute on
# every value, and its margins (the values before the final sigmoid or
# softmax) to 1e-5 relative or 1e-5 absolute: a logit is a float32 sum of
# products that cancel near 0, where the library's own float32 result is
# itself off by a few ulp of the terms (7.6e-6 at most on these fixtures,
# for logits up to about 20). Also: the reference kernel on 3 ranks gives
# the default kernel's bits; broken models fail with one clear line.
# Prints the largest differences.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/oracle-harness.sh"

# Each case NAME: NAME.model.h5 and/or NAME.model.keras against NAME.h5.
oracle_folder nn "--rtol 1e-5 --atol 1e-5" ref:100 "*.model.h5" "*.model.keras"
oracle_folder sk "--rtol 1e-5 --atol 1e-5" ref:100 "*.model.h5"

# Broken models: one line naming the problem, exit 1, no output left.
bad() {
  what=$1 want=$2
  shift 2
  out=$WORK/bad.h5
  if run_bs 1 --model "$WORK/bad.model.h5" --input "$DATA/nn/sk_iris_mlp.h5" \
    --output "$out"; then
    fail "$what: accepted"
  elif ! grep -q -- "$want" "$WORK/err" || [ -e "$out" ]; then
    fail "$what: expected '$want', got: $(cat "$WORK/err")"
  else
    ok "$what: $(head -1 "$WORK/err")"
  fi
}
# The broken files are made from good ones with Python's h5py.
from() { cp "$DATA/nn/$1.model.h5" "$WORK/bad.model.h5" && chmod u+w "$WORK/bad.model.h5"; }
PY=${PYTHON:-python3}
if "$PY" -c 'import h5py' 2>/dev/null; then
  edit() { from sk_iris_mlp && "$PY" -c "import h5py, sys; f = h5py.File(sys.argv[1], 'r+'); $1; f.close()" "$WORK/bad.model.h5"; }
  # Keras: a model_config with an unsupported layer, and a branching graph.
  kedit() {
    from "$1" && "$PY" -c "import h5py, sys; f = h5py.File(sys.argv[1], 'r+'); c = f.attrs['model_config']; c = c.decode() if isinstance(c, bytes) else c; f.attrs['model_config'] = c.replace(sys.argv[2], sys.argv[3]); f.close()" "$WORK/bad.model.h5" "$2" "$3"
  }
  kedit k3_iris_layers '"class_name": "LeakyReLU"' '"class_name": "PReLU"' &&
    bad "Keras 3 unsupported layer" "layer 'leaky_re_lu' (PReLU) is not supported"
  kedit k2_iris_layers '"class_name": "ReLU"' '"class_name": "GRU"' &&
    bad "tf.keras 2 unsupported layer" "(GRU) is not supported"
  kedit k2_digits_functional '[[["dense_3", 0, 0, {}]]]' '[[["dense_3", 1, 0, {}]]]' &&
    bad "tf.keras 2 second call of a layer" "takes a second output or call of layer 'dense_3'"
  kedit k2_bc_mlp '"activation": "tanh"' '"activation": "hard_sigmoid"' &&
    bad "tf.keras 2 hard_sigmoid" "activation 'hard_sigmoid' of tf.keras 2"
  kedit k3_bc_mlp '"activation": "tanh"' '"activation": "glu"' &&
    bad "Keras 3 unsupported activation" "activation 'glu' is not supported (it is not element-wise)"
  edit "f.attrs['batchscore_format_version'] = 3" &&
    bad "newer format version" "network format version 3"
  edit "del f['layers/1/weights']" && bad "missing weights" "layer 1 has no dataset 'weights'"
  edit "f['layers/0'].attrs['activation'] = 'mish'" &&
    bad "unknown activation" "activation 'mish' is not supported"
  edit "d = f['layers/0/weights'][()]; del f['layers/0/weights']; f['layers/0/weights'] = d[:3]" &&
    bad "wrong shape" "dataset 'weights' is 3 x 10, expected 4 x any"
  edit "f.attrs['output'] = 'probit'" && bad "unknown output" "output 'probit'"
  edit "del f.attrs['batchscore_format']" &&
    bad "neither Keras nor native" "neither a Keras model"
else
  echo "SKIP: broken-model cases need Python's h5py"
fi
finish
