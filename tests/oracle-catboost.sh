#!/bin/sh
# Oracle test for CatBoost: every model in data/catboost/ (JSON exports)
# scored by batchscore matches what CatBoost itself stored next to it:
# predict_proba (classifiers) or predict (regressors) to 1e-5 relative or
# 1e-6 absolute, and the raw formula values (--output-margin; (-d, d) for
# binary models) bitwise, at 1 rank; the reference kernel on 3 ranks gives
# the default kernel's bits. Prints the largest differences.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/oracle-harness.sh"

oracle_folder catboost --exact ref:50 "*.json"
finish
