#!/bin/sh
# scripts/export-sklearn with the Python and scikit-learn at hand (Debian's
# python3-sklearn, or $PYTHON): models of this version exported and scored
# by batchscore equal scikit-learn's predict_proba / predict (1e-5
# relative or 1e-6 absolute), and every step or estimator it cannot export
# is refused with one line naming it (exit 1, no file left). Skipped (77)
# without a Python that has scikit-learn, h5py and numpy.
. "$(dirname "$0")/lib.sh"

PY=
for p in ${PYTHON:-} /usr/bin/python3 python3; do
  if "$p" -c 'import sklearn, h5py, numpy' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || { echo "SKIP: no Python with scikit-learn, h5py and numpy"; exit 77; }
EXPORT=$top_srcdir/scripts/export-sklearn
echo "scikit-learn $("$PY" -c 'import sklearn; print(sklearn.__version__)') ($PY)"

# name: a Python expression of the model; the data set is breast cancer
# with NaN in one column (iris for multi-class).
"$PY" - "$WORK" <<'PYEOF' || fail "making the models"
import pickle, sys, warnings
import h5py, numpy as np
from sklearn import compose, ensemble as E, impute, linear_model as lm, neighbors
from sklearn import pipeline, preprocessing as pp
from sklearn.datasets import load_breast_cancer, load_iris
warnings.simplefilter("ignore")
work = sys.argv[1]
Xb, yb = load_breast_cancer(return_X_y=True)
Xb = Xb.astype(np.float32)[:, :8]
Xi, yi = load_iris(return_X_y=True)
Xi = np.c_[Xi, np.arange(150) % 3].astype(np.float32)
nan = Xb.copy()
nan[::7, 2] = np.nan
good = {
    "rf": (E.RandomForestClassifier(8, max_depth=5, random_state=0), Xb, yb),
    "gb_iris": (E.GradientBoostingClassifier(n_estimators=5, random_state=0), Xi, yi),
    "hgb_nan": (E.HistGradientBoostingClassifier(max_iter=8, random_state=0), nan, yb),
    "pipe": (pipeline.make_pipeline(impute.SimpleImputer(), pp.RobustScaler(),
                                    E.ExtraTreesRegressor(5, max_depth=4, random_state=0)),
             nan, yb.astype(np.float64)),
    "ct": (pipeline.make_pipeline(compose.ColumnTransformer(
        [("oh", pp.OneHotEncoder(handle_unknown="ignore"), [4]),
         ("num", pp.MaxAbsScaler(), [0, 1, 2, 3])]), lm.LogisticRegression(max_iter=500)),
        Xi, yi),
}
bad = {
    "step": (pipeline.make_pipeline(pp.PolynomialFeatures(), lm.LogisticRegression()), Xb, yb),
    "estimator": (neighbors.KNeighborsClassifier(), Xb, yb),
    "clip": (pipeline.make_pipeline(pp.MinMaxScaler(clip=True), lm.LogisticRegression()), Xb, yb),
    "text": (pipeline.make_pipeline(pp.OneHotEncoder(), lm.LogisticRegression()),
             np.array([["a"], ["b"]] * 20), np.arange(40) % 2),
}
for name, (m, X, y) in list(good.items()) + list(bad.items()):
    m.fit(X, y)
    with open("%s/%s.pkl" % (work, name), "wb") as f:
        pickle.dump(m, f)
    if name in good:
        want = m.predict_proba(X) if hasattr(m, "predict_proba") else m.predict(X)
        with h5py.File("%s/%s.h5" % (work, name), "w") as f:
            f["features"] = X
            f["expected"] = np.asarray(want, dtype=np.float32).reshape(len(X), -1)
PYEOF

for name in rf gb_iris hgb_nan pipe ct; do
  if ! "$PY" "$EXPORT" "$WORK/$name.pkl" "$WORK/$name.model.h5" >"$WORK/log" 2>&1; then
    fail "$name: export failed: $(cat "$WORK/log")"
  elif ! run_bs 1 --quiet --model "$WORK/$name.model.h5" --input "$WORK/$name.h5" \
    --output "$WORK/$name.out.h5"; then
    fail "$name: batchscore failed: $(cat "$WORK/err")"
  elif res=$("$CMP" --rtol 1e-5 --atol 1e-6 "$WORK/$name.out.h5" "$WORK/$name.h5:/expected"); then
    ok "$name: $res"
  else
    fail "$name: $res"
  fi
done

refused() {
  name=$1 want=$2
  if "$PY" "$EXPORT" "$WORK/$name.pkl" "$WORK/$name.model.h5" >"$WORK/log" 2>&1; then
    fail "$name: exported"
  elif ! grep -qF -- "$want" "$WORK/log" || [ "$(wc -l <"$WORK/log")" != 1 ] ||
    [ -e "$WORK/$name.model.h5" ] || [ -e "$WORK/$name.model.h5.partial" ]; then
    fail "$name: expected one line with '$want' and no file, got: $(cat "$WORK/log")"
  else
    ok "$name refused: $(cat "$WORK/log")"
  fi
}
refused step "pipeline step PolynomialFeatures is not supported"
refused estimator "KNeighborsClassifier is not supported"
refused clip "MinMaxScaler(clip=True) is not supported"
refused text "OneHotEncoder: column 0 has <U1 categories"
finish
