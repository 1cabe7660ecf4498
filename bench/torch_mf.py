"""PyTorch reference for recpipe's models in the MovieLens notebooks' settings.

Reads the same train/valid Parquet files that recpipe's split stage wrote, trains the same
model with Adam and prints one JSON line: per-epoch seconds, ratings/s and validation RMSE.
--model dot_bias: user/item embeddings + biases + global mean, optional sigmoid y_range.
--model mlp: embeddings concatenated, dropout 0.05, Linear(2k, 10) + ReLU, dropout 0.5,
Linear(10, 1), sigmoid y_range (the notebooks' mlp; recpipe's `model = "mlp"` defaults).
--model classifier: embeddings (k 32) concatenated, 3 x [Linear(128), BatchNorm, ReLU,
dropout 0.3], softmax over the distinct ratings, cross-entropy; RMSE of the expected rating
(recpipe's `model = "classifier"` defaults).
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
        # Like recpipe: with a sigmoid the global bias starts where the output is the mean.
        if y_range is not None:
            lo, hi = y_range
            q = min(max((mean - lo) / (hi - lo), 1e-3), 1 - 1e-3)
            mean = float(torch.logit(torch.tensor(q)))
        self.g = nn.Parameter(torch.tensor([mean]))
        self.y_range = y_range

    def forward(self, u, i):
        x = (self.u(u) * self.i(i)).sum(1) + self.ub(u).squeeze(1) + self.ib(i).squeeze(1) + self.g
        if self.y_range is not None:
            lo, hi = self.y_range
            x = lo + (hi - lo) * torch.sigmoid(x)
        return x


class Mlp(nn.Module):
    def __init__(self, n_users, n_items, k, y_range, mean, init):
        super().__init__()
        self.u = nn.Embedding(n_users, k)
        self.i = nn.Embedding(n_items, k)
        for e in (self.u, self.i):
            nn.init.uniform_(e.weight, -init, init)
        self.net = nn.Sequential(nn.Dropout(0.05), nn.Linear(2 * k, 10), nn.ReLU(),
                                 nn.Dropout(0.5), nn.Linear(10, 1))
        self.y_range = y_range or (0.0, 5.5)
        lo, hi = self.y_range
        q = min(max((mean - lo) / (hi - lo), 1e-3), 1 - 1e-3)
        with torch.no_grad():
            self.net[-1].bias.fill_(float(torch.logit(torch.tensor(q))))

    def forward(self, u, i):
        x = self.net(torch.cat([self.u(u), self.i(i)], 1)).squeeze(1)
        lo, hi = self.y_range
        return lo + (hi - lo) * torch.sigmoid(x)


class Classifier(nn.Module):
    def __init__(self, n_users, n_items, k, classes, init):
        super().__init__()
        self.u = nn.Embedding(n_users, k)
        self.i = nn.Embedding(n_items, k)
        for e in (self.u, self.i):
            nn.init.uniform_(e.weight, -init, init)
        layers, d = [], 2 * k
        for _ in range(3):
            layers += [nn.Linear(d, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(0.3)]
            d = 128
        layers.append(nn.Linear(d, len(classes)))
        self.net = nn.Sequential(*layers)
        self.register_buffer("classes", classes)

    def logits(self, u, i):
        return self.net(torch.cat([self.u(u), self.i(i)], 1))

    def forward(self, u, i):
        return (torch.softmax(self.logits(u, i), 1) * self.classes).sum(1)


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
    p.add_argument("--model", default="dot_bias", choices=["dot_bias", "mlp", "classifier"])
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
    if a.model == "dot_bias":
        model = DotBias(n_users, n_items, a.k, a.y_range, float(tr.mean()), a.init)
    elif a.model == "mlp":
        model = Mlp(n_users, n_items, a.k, a.y_range, float(tr.mean()), a.init)
    else:
        classes = torch.unique(tr)
        model = Classifier(n_users, n_items, a.k, classes, a.init)
        target = torch.searchsorted(classes.to(dev), tr)
    model = model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, weight_decay=a.wd)
    n = tr.shape[0]
    epochs = []
    for epoch in range(a.epochs):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(n, device=dev)
        total = 0.0
        for s in range(0, n, a.batch):
            idx = perm[s : s + a.batch]
            if a.model == "classifier":
                if idx.shape[0] < 2:
                    continue  # BatchNorm cannot train on a batch of one
                loss = nn.functional.cross_entropy(model.logits(tu[idx], ti[idx]), target[idx])
            else:
                pred = model(tu[idx], ti[idx])
                loss = ((pred - tr[idx]) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * idx.shape[0]
        if dev.type == "cuda":
            torch.cuda.synchronize()
        secs = time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            rmse = float(((model(vu, vi) - vr) ** 2).mean().sqrt())
        epochs.append(
            {"epoch": epoch + 1, "seconds": secs, "ratings_per_s": n / secs,
             "train_loss": float(total) / n, "valid_rmse": rmse}
        )
    print(json.dumps({"tool": f"pytorch {torch.__version__}", "model": a.model, "threads": torch.get_num_threads(),
                      "batch": a.batch, "epochs": epochs}))


if __name__ == "__main__":
    main()
