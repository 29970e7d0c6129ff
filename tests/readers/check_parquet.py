"""Read an export's Parquet files with DuckDB, pyarrow and polars, as a user would.

Usage: python3 tests/readers/check_parquet.py OUT_DIR

Checks that each reader opens every table as it is, that the three agree on row counts with
the export's _manifest.json, that contact ids are unique, and that the logical types are the
ones documented (UTC timestamps, list<string> tags, booleans). Exits non-zero on any mismatch.
"""

import json
import sys
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.dataset as ds
import pyarrow as pa


def main(out: Path) -> int:
    manifest = json.loads((out / "_manifest.json").read_text())
    expected = manifest["tables"]
    failures = []
    for table, rows in sorted(expected.items()):
        glob = str(out / table / "*.parquet")
        arrow = ds.dataset(str(out / table), format="parquet").to_table()
        duck = duckdb.sql(f"SELECT count(*) FROM read_parquet('{glob}', union_by_name = true)").fetchall()[0][0]
        polars_rows = pl.scan_parquet(glob).select(pl.len()).collect().item()
        print(f"{table}: manifest {rows}, pyarrow {arrow.num_rows}, duckdb {duck}, polars {polars_rows}")
        if not (rows == arrow.num_rows == duck == polars_rows):
            failures.append(f"{table}: row counts disagree")
        if table == "contacts" and rows:
            dupes = duckdb.sql(f"SELECT count(*) - count(DISTINCT id) FROM read_parquet('{glob}')").fetchall()[0][0]
            if dupes:
                failures.append(f"contacts: {dupes} repeated ids")
            schema = arrow.schema
            for name, check, want in [
                ("dateAdded", lambda t: pa.types.is_timestamp(t) and t.tz == "UTC", "timestamp[ms, tz=UTC]"),
                ("tags", lambda t: pa.types.is_list(t) and pa.types.is_string(t.value_type), "list<string>"),
                ("dnd", pa.types.is_boolean, "bool"),
            ]:
                field = next((f for f in schema if f.name == name), None)
                if field is None:
                    failures.append(f"contacts: no column {name}")
                elif not check(field.type):
                    failures.append(f"contacts.{field.name}: {field.type}, expected {want}")
    for f in failures:
        print("FAIL:", f)
    print("readers: ok" if not failures else f"readers: {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
