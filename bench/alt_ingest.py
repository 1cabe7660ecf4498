"""What recpipe's ingest replaces, done with Polars or DuckDB: read a MovieLens ratings.csv,
map user and item ids to dense 0..n-1 indices (sorted order) and write zstd Parquet.
Usage: alt_ingest.py polars|duckdb RATINGS_CSV OUT_DIR"""
import os
import sys
import time

tool, src, out = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(out, exist_ok=True)
t0 = time.perf_counter()
if tool == "polars":
    import polars as pl

    df = pl.scan_csv(src).with_columns(
        (pl.col("userId").rank("dense") - 1).cast(pl.UInt32).alias("user_idx"),
        (pl.col("movieId").rank("dense") - 1).cast(pl.UInt32).alias("item_idx"),
        pl.col("rating").cast(pl.Float32),
    )
    df.select("user_idx", "item_idx", "rating", "timestamp").sink_parquet(
        f"{out}/ratings.parquet", compression="zstd"
    )
    version = pl.__version__
elif tool == "duckdb":
    import duckdb

    con = duckdb.connect()
    con.execute(
        f"""COPY (SELECT (dense_rank() OVER (ORDER BY userId) - 1)::UINTEGER AS user_idx,
                         (dense_rank() OVER (ORDER BY movieId) - 1)::UINTEGER AS item_idx,
                         rating::FLOAT AS rating, timestamp::BIGINT AS timestamp
                  FROM read_csv('{src}', header=true))
            TO '{out}/ratings.parquet' (FORMAT parquet, COMPRESSION zstd)"""
    )
    version = duckdb.__version__
else:
    raise SystemExit(f"unknown tool {tool}")
print(f"{tool} {version} {time.perf_counter() - t0:.3f}")
