"""Read an incremental export (a full run, then a delta) as warehouse engines do: one
Hive-partitioned dataset per table, partitions location_id and run.

Usage: check_incremental.py DIR

Checks that DuckDB and pyarrow read the union of the runs with the partition columns, that a
filter on run prunes files, and that the row counts match the runs' manifests.
"""

import glob
import json
import os
import sys

import duckdb
import pyarrow.dataset as ds


def fail(msg):
    print(f"error: incremental reader check: {msg}", file=sys.stderr)
    sys.exit(1)


def main(root):
    manifests = sorted(glob.glob(os.path.join(root, "_manifests", "*.json")))
    if len(manifests) < 2:
        fail(f"expected the manifests of two runs in {root}/_manifests, found {manifests}")
    runs = [json.load(open(m)) for m in manifests]
    if [r["mode"] for r in runs[:2]] != ["full", "delta"]:
        fail(f"modes {[r['mode'] for r in runs]}, expected full then delta")
    con = duckdb.connect()
    for table in ("contacts", "tasks", "notes"):
        want = sum(r["tables"].get(table, 0) for r in runs)
        glob_path = os.path.join(root, f"table={table}", "*", "*", "*.parquet")
        sql = (
            f"select run, location_id, count(*) from read_parquet('{glob_path}', "
            "hive_partitioning = true, union_by_name = true) group by all"
        )
        got = con.sql(sql).fetchall()
        if sum(n for _, _, n in got) != want:
            fail(f"DuckDB read {got} rows of {table}, the manifests say {want}")
        first = runs[0]["run"]
        pruned = con.sql(
            f"select count(*) from read_parquet('{glob_path}', hive_partitioning = true) "
            f"where run = '{first}'"
        ).fetchall()[0][0]
        if pruned != runs[0]["tables"].get(table, 0):
            fail(f"DuckDB: run {first} of {table} has {pruned} rows")
        dataset = ds.dataset(
            os.path.join(root, f"table={table}"), format="parquet", partitioning="hive"
        )
        if "run" not in dataset.schema.names or dataset.count_rows() != want:
            fail(f"pyarrow read {dataset.count_rows()} rows of {table}, schema {dataset.schema.names}")
        print(f"incremental {table}: {want} rows over {len(got)} partitions (DuckDB, pyarrow)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        fail("usage: check_incremental.py DIR")
    main(sys.argv[1])
