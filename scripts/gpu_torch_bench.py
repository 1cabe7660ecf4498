"""PyTorch on the GPU, for gpu-check.sh: dot_bias (user/item embeddings + biases + global
mean, no sigmoid) trained with plain SGD (no momentum, no weight decay; an L2 penalty on the
rows a batch touches, like recpipe's per-rating SGD) at several batch sizes, one epoch each
after a short warm-up. Prints a line per batch size and writes one JSON file.

Data: --train/--valid name the split stage's Parquet files (read with pyarrow) when both
exist and pyarrow imports; else --synthetic N USERS ITEMS makes ratings of that shape on the
GPU (random ids, a planted low-rank signal, 90/10 split), which the JSON's "data" says.
A batch size whose epoch would outlast --max-seconds trains on part of it: its s/epoch is
then the epoch's time at that rate ("epoch_fraction" < 1), its RMSE after the part.

  python3 gpu_torch_bench.py --train train.parquet --valid valid.parquet \
      --synthetic 25000000 162541 59047 --k 64 --batches 1024 8192 65536 262144 --json out.json
"""
import argparse
import json
import os
import time

import torch


def load_parquet(path, dev):
    import pyarrow.parquet as pq

    t = pq.read_table(path, columns=["user_idx", "item_idx", "rating"])
    meta = t.schema.metadata or {}
    u = torch.from_numpy(t["user_idx"].to_numpy().astype("int64")).to(dev)
    i = torch.from_numpy(t["item_idx"].to_numpy().astype("int64")).to(dev)
    r = torch.from_numpy(t["rating"].to_numpy().astype("float32")).to(dev)
    return u, i, r, meta


def synthetic(n, users, items, dev, seed=42):
    g = torch.Generator(device=dev).manual_seed(seed)
    u = torch.randint(0, users, (n,), device=dev, generator=g)
    i = torch.randint(0, items, (n,), device=dev, generator=g)
    pu = torch.randn(users, 8, device=dev, generator=g) * 0.5
    qi = torch.randn(items, 8, device=dev, generator=g) * 0.5
    r = (3.5 + (pu[u] * qi[i]).sum(1) + 0.5 * torch.randn(n, device=dev, generator=g)).clamp(0.5, 5.0)
    r = torch.round(r * 2) / 2
    cut = n * 9 // 10
    return (u[:cut], i[:cut], r[:cut]), (u[cut:], i[cut:], r[cut:])


class DotBias(torch.nn.Module):
    def __init__(self, users, items, k, mean):
        super().__init__()
        # sparse=True: SGD updates only the rows a batch touches, as recpipe does.
        self.u = torch.nn.Embedding(users, k, sparse=True)
        self.i = torch.nn.Embedding(items, k, sparse=True)
        self.ub = torch.nn.Embedding(users, 1, sparse=True)
        self.ib = torch.nn.Embedding(items, 1, sparse=True)
        for e in (self.u, self.i):
            torch.nn.init.normal_(e.weight, 0.0, 0.1)
        for e in (self.ub, self.ib):
            torch.nn.init.zeros_(e.weight)
        self.g = torch.nn.Parameter(torch.tensor([mean]))

    def forward(self, u, i):
        pu, qi = self.u(u), self.i(i)
        pred = (pu * qi).sum(1) + self.ub(u).squeeze(1) + self.ib(i).squeeze(1) + self.g
        return pred, pu, qi


def rmse(model, u, i, r, chunk=1 << 22):
    with torch.no_grad():
        se = 0.0
        for s in range(0, u.shape[0], chunk):
            p, _, _ = model(u[s : s + chunk], i[s : s + chunk])
            se += float(((p - r[s : s + chunk]) ** 2).sum())
    return (se / max(u.shape[0], 1)) ** 0.5


def epoch(model, opt, u, i, r, batch, l2, steps=None, max_seconds=None):
    """One pass over a shuffled order (or its first `steps` batches, or as many as fit in
    `max_seconds`); returns the rows trained on."""
    n = u.shape[0]
    perm = torch.randperm(n, device=u.device)
    t0, done = time.perf_counter(), 0
    for b, s in enumerate(range(0, n, batch)):
        if steps is not None and b >= steps:
            break
        if max_seconds is not None and b % 64 == 63:
            if u.device.type == "cuda":
                torch.cuda.synchronize()
            if time.perf_counter() - t0 > max_seconds:
                break
        idx = perm[s : s + batch]
        pred, pu, qi = model(u[idx], i[idx])
        # Summed over the batch: each rating moves its rows by lr, as in per-rating SGD.
        loss = ((pred - r[idx]) ** 2).sum() * 0.5 + 0.5 * l2 * ((pu**2).sum() + (qi**2).sum())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        done += idx.shape[0]
    return done


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--train")
    p.add_argument("--valid")
    p.add_argument("--synthetic", nargs=3, type=int, metavar=("N", "USERS", "ITEMS"),
                   default=[25_000_000, 162_541, 59_047])
    p.add_argument("--k", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--l2", type=float, default=0.05)
    p.add_argument("--batches", type=int, nargs="+", default=[1024, 8192, 65536, 262144])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-seconds", type=float, default=15.0,
                   help="time cap of one batch size's epoch: past it the epoch stops and ratings/s counts the rows done")
    p.add_argument("--device", default="cuda")
    p.add_argument("--json")
    a = p.parse_args()
    dev = torch.device(a.device)
    torch.manual_seed(42)

    data = None
    if a.train and a.valid and os.path.exists(a.train) and os.path.exists(a.valid):
        try:
            tu, ti, tr, meta = load_parquet(a.train, dev)
            vu, vi, vr, _ = load_parquet(a.valid, dev)
            users = int(meta.get(b"recpipe.n_users", int(torch.maximum(tu.max(), vu.max())) + 1))
            items = int(meta.get(b"recpipe.n_items", int(torch.maximum(ti.max(), vi.max())) + 1))
            data = f"recpipe's split of the synthetic ratings ({os.path.basename(a.train)}, read with pyarrow)"
        except ImportError as e:
            print(f"no pyarrow ({e}): generating the same shape instead", flush=True)
    if data is None:
        n, users, items = a.synthetic
        (tu, ti, tr), (vu, vi, vr) = synthetic(n, users, items, dev)
        data = f"generated by gpu_torch_bench.py on the GPU: {n:,} ratings, {users:,} users x {items:,} items (not recpipe's rows)"
    n = tu.shape[0]
    mean = float(tr.mean())
    print(f"{data}; {n:,} train rows, {vu.shape[0]:,} valid rows", flush=True)

    runs = []
    for batch in a.batches:
        try:
            model = DotBias(users, items, a.k, mean).to(dev)
            # Plain SGD: lr per rating (the loss is a sum over the batch).
            opt = torch.optim.SGD(model.parameters(), lr=a.lr)
            epoch(model, opt, tu, ti, tr, batch, a.l2, steps=20)  # warm-up: kernels, allocator
            model = DotBias(users, items, a.k, mean).to(dev)
            opt = torch.optim.SGD(model.parameters(), lr=a.lr)
            secs, rows = 0.0, 0
            for _ in range(a.epochs):
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                rows += epoch(model, opt, tu, ti, tr, batch, a.l2, max_seconds=a.max_seconds)
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                secs += time.perf_counter() - t0
            rps = rows / secs
            run = {"batch": batch, "seconds": n / rps, "ratings_per_s": rps, "epoch_fraction": rows / (n * a.epochs),
                   "valid_rmse": rmse(model, vu, vi, vr)}
        except Exception as e:  # an out-of-memory or a diverged batch size must not hide the others
            run = {"batch": batch, "error": f"{type(e).__name__}: {e}"[:200]}
        runs.append(run)
        print(json.dumps(run), flush=True)
        model = opt = None
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    ok = [r for r in runs if "error" not in r]
    best = max(ok, key=lambda r: r["ratings_per_s"]) if ok else None
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    out = {"torch": torch.__version__, "device": name, "data": data, "n_train": n, "k": a.k,
           "lr": a.lr, "l2": a.l2, "epochs": a.epochs, "runs": runs, "best": best}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f)
    if best:
        print(f"best: batch {best['batch']}, {best['ratings_per_s']:,.0f} ratings/s", flush=True)
    raise SystemExit(0 if best else 1)


if __name__ == "__main__":
    main()
