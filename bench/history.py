"""Summarise a training run as one JSON line for bench/report.py.
Usage: history.py HISTORY.parquet|TORCH.json TOOL WHAT"""
import json
import sys

src, tool, what = sys.argv[1], sys.argv[2], sys.argv[3]
if src.endswith(".parquet"):
    import pyarrow.parquet as pq

    rows = pq.read_table(src).to_pylist()
    label = tool
else:
    run = json.load(open(src))
    rows = run["epochs"]
    label = f"{tool} (batch {run['batch']}, {run['threads']} threads)"
secs = [r["seconds"] for r in rows]
print(json.dumps({
    "what": what, "tool": tool, "label": label, "epochs": len(rows),
    "epoch_seconds": sum(secs) / len(secs),
    "ratings_per_s": sum(r["ratings_per_s"] for r in rows) / len(rows),
    "valid_rmse": rows[-1]["valid_rmse"],
    "best_valid_rmse": min(r["valid_rmse"] for r in rows),
}))
