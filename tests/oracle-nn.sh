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
# the default kernel's bits. Prints the largest differences. Broken
# networks are refusal cases (tests/cases/keras-*, native-*).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/oracle-harness.sh"

# Each case NAME: NAME.model.h5 and/or NAME.model.keras against NAME.h5.
oracle_folder nn "--rtol 1e-5 --atol 1e-5" ref:100 "*.model.h5" "*.model.keras"
oracle_folder sk "--rtol 1e-5 --atol 1e-5" ref:100 "*.model.h5"

finish
