#!/usr/bin/env python3
"""Open recpipe artifacts with DuckDB and Polars and check them against each other.

    check_interop.py ARTIFACT_DIR [ARTIFACT_DIR ...]

For every *.parquet file of every directory: the row counts seen by DuckDB, Polars and the
Parquet footer (pyarrow) agree, and match manifest.json when the directory has one.
For an export artifact (item_embeddings.parquet + similar_items.parquet): a cosine query in
DuckDB over item_embeddings finds the neighbours recorded in similar_items, embeddings read
as fixed-size arrays in Polars, and when a split artifact is among the directories,
recommendations never contain one of its train ratings.
Exits 1 with one line per failed check.
"""

import json
import sys
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq

# Neighbours whose cosine differs by less than this are a tie: DuckDB (float64 on the
# float32 vectors) and recpipe (float32 matrix multiply) may order them differently.
TIE = 1e-5
SAMPLE_ITEMS = 8

failures = []


def fail(msg):
    failures.append(msg)
    print(f"FAIL {msg}")


def sql_path(p):
    return "'" + str(p).replace("'", "''") + "'"


def check_rows(con, directory):
    manifest = {}
    mpath = directory / "manifest.json"
    if mpath.exists():
        for out in json.loads(mpath.read_text()).get("outputs", []):
            if "rows" in out and out.get("rows") is not None:
                manifest[out["path"]] = out["rows"]
    files = sorted(directory.glob("*.parquet"))
    if not files:
        fail(f"{directory}: no .parquet files")
    for f in files:
        footer = pq.ParquetFile(f).metadata.num_rows
        duck = con.execute(f"SELECT count(*) FROM read_parquet({sql_path(f)})").fetchone()[0]
        polars = pl.scan_parquet(f).select(pl.len()).collect().item()
        counts = {"parquet footer": footer, "duckdb": duck, "polars": polars}
        if f.name in manifest:
            counts["manifest.json"] = manifest[f.name]
        if len(set(counts.values())) != 1:
            fail(f"{f}: row counts disagree: {counts}")
        else:
            print(f"ok   {f}: {footer} rows (duckdb, polars{', manifest' if f.name in manifest else ''})")


def check_similar(con, directory):
    emb = directory / "item_embeddings.parquet"
    sim = directory / "similar_items.parquet"
    meta = pq.read_schema(emb).metadata or {}
    k = int(meta.get(b"recpipe.embedding_dim", b"0"))
    if k <= 0:
        fail(f"{emb}: schema metadata has no recpipe.embedding_dim")
        return
    # Polars must see the vectors as a fixed-size array, not a list of unknown length.
    dtype = pl.read_parquet_schema(emb)["embedding"]
    if dtype != pl.Array(pl.Float32, k):
        fail(f"{emb}: Polars reads embedding as {dtype}, expected Array(Float32, {k})")
    if not sim.exists():
        return
    smeta = pq.read_schema(sim).metadata or {}
    min_ratings = int(smeta.get(b"recpipe.min_ratings", b"0"))
    neighbors = con.execute(f"SELECT max(rank) FROM read_parquet({sql_path(sim)})").fetchone()[0]
    if neighbors is None:
        print(f"ok   {sim}: empty")
        return
    # The most-rated items with a neighbour list, and a few more spread over the id space.
    items = [
        r[0]
        for r in con.execute(
            f"""
            SELECT DISTINCT s.item_idx, e.n_ratings FROM read_parquet({sql_path(sim)}) s
            JOIN read_parquet({sql_path(emb)}) e USING (item_idx)
            ORDER BY e.n_ratings DESC, s.item_idx LIMIT {SAMPLE_ITEMS // 2}"""
        ).fetchall()
    ]
    items += [
        r[0]
        for r in con.execute(
            f"""
            SELECT item_idx FROM (SELECT DISTINCT item_idx FROM read_parquet({sql_path(sim)}))
            ORDER BY hash(item_idx) LIMIT {SAMPLE_ITEMS // 2}"""
        ).fetchall()
    ]
    items = sorted(set(items))
    # The query the README's export section shows, with the filter the export applied.
    query = f"""
        WITH e AS (
            SELECT item_idx, title, n_ratings, embedding::FLOAT[{k}] AS v
            FROM read_parquet({sql_path(emb)})
        )
        SELECT q.item_idx, n.item_idx AS neighbor_idx,
               array_cosine_similarity(q.v, n.v) AS score
        FROM e q JOIN e n ON n.item_idx <> q.item_idx AND n.n_ratings >= {min_ratings}
        WHERE q.item_idx IN ({", ".join(map(str, items))})
        QUALIFY row_number() OVER (PARTITION BY q.item_idx ORDER BY score DESC, n.item_idx) <= {neighbors}
        ORDER BY q.item_idx, score DESC, n.item_idx
    """
    duck = {}
    for q, n, s in con.execute(query).fetchall():
        duck.setdefault(q, []).append((n, s))
    # The recorded pairs with their cosine recomputed by DuckDB.
    recorded = {}
    for q, n, s, true in con.execute(
        f"""
        WITH e AS (
            SELECT item_idx, embedding::FLOAT[{k}] AS v FROM read_parquet({sql_path(emb)})
        )
        SELECT s.item_idx, s.neighbor_idx, s.score, array_cosine_similarity(q.v, n.v)
        FROM read_parquet({sql_path(sim)}) s
        JOIN e q ON q.item_idx = s.item_idx JOIN e n ON n.item_idx = s.neighbor_idx
        WHERE s.item_idx IN ({", ".join(map(str, items))})
        ORDER BY s.item_idx, s.rank"""
    ).fetchall():
        recorded.setdefault(q, []).append((n, s, true))
    bad = 0
    for q in items:
        want, got = duck.get(q, []), recorded.get(q, [])
        if len(want) != len(got):
            fail(f"{sim}: item_idx {q}: {len(got)} neighbours recorded, DuckDB finds {len(want)}")
            bad += 1
            continue
        for rank, ((wn, ws), (gn, gs, gtrue)) in enumerate(zip(want, got), 1):
            if abs(gs - gtrue) > 1e-4:
                fail(
                    f"{sim}: item_idx {q} rank {rank}: neighbour {gn} recorded with score "
                    f"{gs:.6f}, DuckDB array_cosine_similarity gives {gtrue:.6f}"
                )
            elif wn != gn and abs(ws - gtrue) > TIE:
                fail(
                    f"{sim}: item_idx {q} rank {rank}: recorded {gn} (cosine {gtrue:.6f}), "
                    f"DuckDB's top-{neighbors} has {wn} (cosine {ws:.6f}) there"
                )
            else:
                continue
            bad += 1
            break
    if not bad:
        print(
            f"ok   {sim}: DuckDB cosine top-{neighbors} matches for {len(items)} items "
            f"(item_idx {items})"
        )


def check_recommendations(con, directory, train_files):
    recs = directory / "recommendations.parquet"
    for train in train_files:
        seen = con.execute(
            f"""SELECT count(*) FROM read_parquet({sql_path(recs)}) r
                JOIN read_parquet({sql_path(train)}) t USING (user_idx, item_idx)"""
        ).fetchone()[0]
        if seen:
            fail(f"{recs}: {seen} recommendations are train ratings of {train}")
        else:
            print(f"ok   {recs}: no train rating of {train}")


def main(argv):
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    dirs = []
    for a in argv:
        d = Path(a).resolve()
        if not d.is_dir():
            print(f"check_interop: {a} is not a directory", file=sys.stderr)
            return 2
        dirs.append(d)
    con = duckdb.connect()
    print(f"duckdb {duckdb.__version__}, polars {pl.__version__}")
    train_files = [d / "train.parquet" for d in dirs if (d / "train.parquet").exists()]
    for d in dirs:
        check_rows(con, d)
        if (d / "item_embeddings.parquet").exists():
            check_similar(con, d)
        if (d / "recommendations.parquet").exists():
            check_recommendations(con, d, train_files)
    if failures:
        print(f"{len(failures)} interop check(s) failed", file=sys.stderr)
        return 1
    print("interop: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
