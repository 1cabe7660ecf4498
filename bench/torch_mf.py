"""PyTorch reference for recpipe's dot_bias model: the MovieLens notebooks' setting.

Reads the same train/valid Parquet files that recpipe's split stage wrote, trains the same
model (user/item embeddings + biases + global mean, optional sigmoid y_range) with Adam and
prints one JSON line: per-epoch seconds, ratings/s and validation RMSE.
"""
import argparse
import json
import time

import pyarrow.parquet as pq
import torch
from torch import nn


class DotBias(nn.Module):
    def __init__(self, n_users, n_items, k, y_range, mean, init):
        super().__init__()
        self.u = nn.Embedding(n_users, k)
        self.i = nn.Embedding(n_items, k)
        self.ub = nn.Embedding(n_users, 1)
        self.ib = nn.Embedding(n_items, 1)
        for e in (self.u, self.i, self.ub, self.ib):
            nn.init.uniform_(e.weight, -init, init)
        self.g = nn.Parameter(torch.tensor([mean]))
        self.y_range = y_range

    def forward(self, u, i):
        x = (self.u(u) * self.i(i)).sum(1) + self.ub(u).squeeze(1) + self.ib(i).squeeze(1) + self.g
        if self.y_range is not None:
            lo, hi = self.y_range
            x = lo + (hi - lo) * torch.sigmoid(x)
        return x


def load(path, device):
    t = pq.read_table(path, columns=["user_idx", "item_idx", "rating"])
    meta = t.schema.metadata or {}
    u = torch.from_numpy(t["user_idx"].to_numpy().astype("int64", copy=True)).to(device)
    i = torch.from_numpy(t["item_idx"].to_numpy().astype("int64")).to(device)
    r = torch.from_numpy(t["rating"].to_numpy().copy()).to(device)
    return u, i, r, meta


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--train", required=True)
    p.add_argument("--valid", required=True)
    p.add_argument("--k", type=int, default=50)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--wd", type=float, default=1e-4)
    p.add_argument("--init", type=float, default=0.01)
    p.add_argument("--y-range", type=float, nargs=2, default=None)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    tu, ti, tr, meta = load(a.train, dev)
    vu, vi, vr, _ = load(a.valid, dev)
    n_users = int(meta.get(b"recpipe.n_users", int(tu.max()) + 1))
    n_items = int(meta.get(b"recpipe.n_items", int(ti.max()) + 1))
    model = DotBias(n_users, n_items, a.k, a.y_range, float(tr.mean()), a.init).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, weight_decay=a.wd)
    n = tr.shape[0]
    epochs = []
    for epoch in range(a.epochs):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        perm = torch.randperm(n, device=dev)
        total = 0.0
        for s in range(0, n, a.batch):
            idx = perm[s : s + a.batch]
            pred = model(tu[idx], ti[idx])
            loss = ((pred - tr[idx]) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * idx.shape[0]
        if dev.type == "cuda":
            torch.cuda.synchronize()
        secs = time.perf_counter() - t0
        with torch.no_grad():
            rmse = float(((model(vu, vi) - vr) ** 2).mean().sqrt())
        epochs.append(
            {"epoch": epoch + 1, "seconds": secs, "ratings_per_s": n / secs,
             "train_loss": float(total) / n, "valid_rmse": rmse}
        )
    print(json.dumps({"tool": f"pytorch {torch.__version__}", "threads": torch.get_num_threads(),
                      "batch": a.batch, "epochs": epochs}))


if __name__ == "__main__":
    main()
