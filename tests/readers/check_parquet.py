"""Read an export's Parquet files with DuckDB, pyarrow and polars, as a user would.

Usage: python3 tests/readers/check_parquet.py [--require TYPE,...] OUT_DIR [OUT_DIR ...]

For every table of every OUT_DIR, each reader materialises every column of every part file
(DuckDB `SELECT *` fetched into Arrow, pyarrow `to_table()`, polars `collect()`), never just
metadata. Then:
  - the part files on disk are the ones `_manifest.json` lists, with the rows it lists;
  - the three readers agree with the manifest on row counts;
  - every column has one of the types the export writes (string, int, float, decimal(p,s),
    bool, date, timestamp = ms UTC, list<string>), and each reader sees it as that type in its
    own type system (so DuckDB and polars, which do not read pyarrow's schema metadata, see
    e.g. the timestamps' UTC annotation in the Parquet file itself);
  - the three readers return the same values: the full tables, converted to one Arrow form,
    compared cell by cell;
  - contact ids are unique.
--require lists types that must occur somewhere in the given folders, so an export that
stops writing, say, decimals fails the check instead of silently checking less.
Prints one line per table and reader; exits non-zero on any mismatch.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

READERS = ("pyarrow", "duckdb", "polars")


def logical_type(t: pa.DataType) -> str | None:
    """The export's name for a Parquet column's Arrow type; None if the export never writes it."""
    if pa.types.is_string(t):
        return "string"
    if pa.types.is_int64(t):
        return "int"
    if pa.types.is_float64(t):
        return "float"
    if pa.types.is_decimal128(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_date32(t):
        return "date"
    if pa.types.is_timestamp(t) and t.unit == "ms" and t.tz == "UTC":
        return "timestamp"
    if pa.types.is_list(t) and pa.types.is_string(t.value_type):
        return "list<string>"
    return None


def duckdb_type(lt: str) -> str:
    fixed = {
        "string": "VARCHAR",
        "int": "BIGINT",
        "float": "DOUBLE",
        "bool": "BOOLEAN",
        "date": "DATE",
        "timestamp": "TIMESTAMP WITH TIME ZONE",
        "list<string>": "VARCHAR[]",
    }
    return fixed.get(lt) or lt.upper()  # decimal(18,2) -> DECIMAL(18,2)


def polars_type(lt: str) -> pl.DataType:
    if lt.startswith("decimal("):
        p, s = lt[len("decimal("):-1].split(",")
        return pl.Decimal(int(p), int(s))
    return {
        "string": pl.String(),
        "int": pl.Int64(),
        "float": pl.Float64(),
        "bool": pl.Boolean(),
        "date": pl.Date(),
        "timestamp": pl.Datetime("ms", "UTC"),
        "list<string>": pl.List(pl.String()),
    }[lt]


def normalise(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """One Arrow form for all readers: the Parquet schema's column order and types.

    The casts only undo representation choices (DuckDB's microsecond timestamps in its session
    zone, polars' large/view strings and lists); they are `safe`, so a value that would change
    (a sub-millisecond timestamp, a decimal that does not fit) raises instead of comparing equal.
    """
    return table.select(schema.names).cast(schema, safe=True)


def read_pyarrow(files, schema):
    return ds.dataset(files, schema=schema, format="parquet").to_table()


def read_duckdb(files, _schema):
    con = duckdb.connect()
    rel = con.sql(f"SELECT * FROM read_parquet({[str(f) for f in files]!r}, union_by_name = true)")
    types = dict(zip(rel.columns, (str(t) for t in rel.types)))
    # DuckDB 1.4+ names it to_arrow_table; older releases only have fetch_arrow_table.
    fetch = getattr(rel, "to_arrow_table", None) or rel.fetch_arrow_table
    return fetch(), types


def read_polars(files, _schema):
    # One scan per file, concatenated by name: part files of different locations may carry
    # different custom-field columns, as with DuckDB's union_by_name.
    df = pl.concat([pl.scan_parquet(f) for f in files], how="diagonal").collect()
    return df.to_arrow(), dict(df.schema)


def check_table(out: Path, table: str, manifest: dict, seen_types: set, fail) -> None:
    rows = manifest["tables"][table]
    listed = {f["path"]: f["rows"] for f in manifest.get("files", []) if f["table"] == table}
    files = sorted((out / table).glob("*.parquet"))
    on_disk = {f.relative_to(out).as_posix() for f in files}
    for path in sorted(set(listed) - on_disk):
        fail(f"{table}: {path} is in _manifest.json but not on disk")
    for path in sorted(on_disk - set(listed)):
        fail(f"{table}: {path} is on disk but not in _manifest.json")
    if sum(listed.values()) != rows:
        fail(f"{table}: manifest files hold {sum(listed.values())} rows, its table count says {rows}")
    if not files:
        print(f"{out}/{table}: manifest {rows}, no part files")
        if rows:
            fail(f"{table}: manifest says {rows} rows but there are no part files")
        return

    try:
        schemas = [pq.read_schema(f) for f in files]
        schema = pa.unify_schemas(schemas)
    except Exception as e:  # a truncated or foreign file
        fail(f"{table}: cannot read the Parquet schemas: {type(e).__name__}: {e}")
        return
    for f, s in zip(files, schemas):
        want = listed.get(f.relative_to(out).as_posix())
        got = pq.ParquetFile(f).metadata.num_rows
        if want is not None and got != want:
            fail(f"{table}: {f.name} holds {got} rows, _manifest.json says {want}")

    types = {}
    for field in schema:
        lt = logical_type(field.type)
        if lt is None:
            fail(f"{table}.{field.name}: type {field.type} is not one the export writes")
        else:
            types[field.name] = lt
    seen_types.update(types.values())
    counts = {}
    for lt in types.values():
        counts[lt] = counts.get(lt, 0) + 1
    summary = " ".join(f"{lt}x{n}" for lt, n in sorted(counts.items()))
    print(f"{out}/{table}: manifest {rows} rows, {len(files)} file(s), {len(schema)} columns: {summary}")

    tables, lines = {}, {}
    reader_problems = {name: [] for name in READERS}
    for name, read in (("pyarrow", read_pyarrow), ("duckdb", read_duckdb), ("polars", read_polars)):
        start = time.perf_counter()
        try:
            result = read(files, schema)
            got, native = result if isinstance(result, tuple) else (result, None)
        except Exception as e:
            lines[name] = f"  {name:8} cannot read it"
            reader_problems[name].append(f"{type(e).__name__}: {str(e).splitlines()[0]}")
            continue
        ms = (time.perf_counter() - start) * 1000
        problems = []
        if got.num_rows != rows:
            problems.append(f"{got.num_rows} rows, manifest {rows}")
        if set(got.column_names) != set(schema.names):
            problems.append(f"columns differ: {sorted(set(got.column_names) ^ set(schema.names))}")
        if native is not None:  # the reader's own idea of each column's type
            want_type = duckdb_type if name == "duckdb" else polars_type
            for col, lt in types.items():
                if col in native and native[col] != want_type(lt):
                    problems.append(f"{col} is {native[col]}, expected {want_type(lt)}")
        if not problems:
            try:
                tables[name] = normalise(got, schema)
            except Exception as e:
                problems.append(f"cannot convert to the Parquet schema: {type(e).__name__}: {e}")
        lines[name] = f"  {name:8} {got.num_rows:>7} rows {got.num_columns:>4} cols {ms:7.0f} ms"
        reader_problems[name] = problems

    # Cell by cell: every reader against the first one that read the table (pyarrow unless it
    # failed), column by column so that a failure names the column and the first differing row.
    base_name = next((n for n in READERS if n in tables), None)
    base = tables.get(base_name)
    for name in READERS:
        other = tables.get(name)
        if name == base_name or other is None:
            continue
        for col in schema.names:
            a, b = base.column(col), other.column(col)
            if not a.equals(b):
                diff = next((i for i in range(len(a)) if a[i] != b[i]), None)
                where = "" if diff is None else (
                    f", first at row {diff}: {b[diff].as_py()!r} vs {a[diff].as_py()!r}")
                reader_problems[name].append(f"{col} differs from {base_name}{where}")
                break
    for name in READERS:
        problems = reader_problems[name]
        print(f"{lines[name]}  {'ok' if not problems else 'FAIL'}")
        for p in problems:
            fail(f"{table}: {name}: {p}")

    if table == "contacts" and base is not None:
        id_col = next((c for c in ("id", "contact_id") if c in schema.names), None)
        if id_col is None:
            fail("contacts: no id or contact_id column")
        else:
            ids = base.column(id_col)
            if ids.null_count or len(ids.unique()) != len(ids):
                fail(f"contacts.{id_col}: repeated or missing ids")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="+", type=Path, help="export folder(s) with _manifest.json")
    parser.add_argument("--require", default="", help="comma-separated types that must occur")
    args = parser.parse_args()

    failures = []

    def fail(msg):
        failures.append(msg)

    seen_types = set()
    print(f"readers: pyarrow {pa.__version__}, duckdb {duckdb.__version__}, polars {pl.__version__}")
    for out in args.out:
        try:
            manifest = json.loads((out / "_manifest.json").read_text())
        except Exception as e:
            fail(f"{out}: cannot read _manifest.json: {e}")
            continue
        for table in sorted(manifest["tables"]):
            check_table(out, table, manifest, seen_types, lambda m, out=out: fail(f"{out}/{m}"))

    # Split on commas outside parentheses: decimal(18,2) is one type.
    required, depth, cur = [], 0, ""
    for ch in args.require + ",":
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            required += [cur.strip()] if cur.strip() else []
            cur = ""
        else:
            cur += ch
    for lt in required:
        if lt not in seen_types:
            fail(f"no column of type {lt} in {', '.join(map(str, args.out))}")
    print(f"types seen: {', '.join(sorted(seen_types))}")

    for f in failures:
        print("FAIL:", f)
    print("readers: ok" if not failures else f"readers: {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
