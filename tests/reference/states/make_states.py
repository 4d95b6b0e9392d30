import gzip, json, numpy as np
from trueprob.stats import EvaluationStats
from trueprob.multilabel.stats import MultilabelStats
from trueprob.regression import RegressionStats, Gaussian, QuantileSet
import inspect
rng = np.random.default_rng(14)
out = "tests/reference/states"
import os; os.makedirs(out, exist_ok=True)
z = rng.normal(size=(40, 3)); y = rng.integers(0, 3, 40)
w = rng.uniform(0.5, 2, 40)
blobs = {}
blobs["evaluation"] = EvaluationStats(3, n_bins=5).update(y, logits=z, sample_weight=w)
blobs["evaluation_parts"] = EvaluationStats(3, n_bins=4, closed="left", parts=("scores", "top_label", "classwise")).update(y, logits=z)
blobs["evaluation_empty"] = EvaluationStats(4, n_bins=6, edges=[0, .3, .5, .7, .8, .9, 1.0])
st = EvaluationStats(3, n_bins=5, n_blocks=3)
from trueprob._validation import prepare
inp = prepare(y, logits=z)
for ch in inp.chunks(40):
    st.update_chunk(inp.xp, ch, block=np.arange(40) % 3)
blobs["evaluation_blocked"] = st
zl = rng.normal(size=(30, 4)); yl = (rng.uniform(size=(30, 4)) < 0.4).astype(int)
blobs["multilabel"] = MultilabelStats(4, n_bins=6).update(yl, logits=zl)
blobs["multilabel_empty"] = MultilabelStats(2)
yr = rng.normal(size=50)
blobs["regression"] = RegressionStats().update(yr, Gaussian(mean=rng.normal(size=50) * .3, std=1.2))
print(inspect.signature(QuantileSet))
lv = np.array([0.1, 0.25, 0.5, 0.75, 0.9])
from scipy.stats import norm
mu = rng.normal(size=50) * .3
q = mu[:, None] + norm.ppf(lv)[None, :]
blobs["regression_quantiles"] = RegressionStats(quantile_levels=lv).update(yr, QuantileSet(q, lv))
blobs["regression_empty"] = RegressionStats(coverage_levels=[0.5, 0.9])
expected = {}
for name, s in blobs.items():
    b = s.to_bytes()
    with open(f"{out}/{name}.npz.gz", "wb") as f:
        f.write(gzip.compress(b, mtime=0))
    if "empty" in name:
        expected[name] = None
    else:
        r = s.finalize()
        expected[name] = json.loads(r.to_json())
    print(name, len(b), len(gzip.compress(b)))
import trueprob, subprocess
commit = subprocess.check_output(["git", "rev-parse", "HEAD"]).decode().strip()
with open(f"{out}/expected.json", "w") as f:
    json.dump({"source": f"written by to_bytes() of trueprob at commit {commit} (before the state base class); finalize() of each state at that commit", "reports": expected}, f, indent=1, sort_keys=True)
