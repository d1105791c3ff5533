"""Time `labelwise import` (the use-case) on 100 k items, SQLite and PostgreSQL.

Generates a JSONL and a Parquet file of ``--n`` labelled texts in a temporary
folder, imports each into a fresh database (a SQLite file; a PostgreSQL
database created and dropped here) and prints a markdown table.

    python bench/import_speed.py [--n 100000] [--pg postgresql://postgres@127.0.0.1:5432]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import create_engine, text

from labelwise.service.io import import_file
from labelwise.service.store.engine import make_engine, make_sessionmaker, transaction
from labelwise.service.store.migrate import upgrade
from labelwise.service.store.projects import create_project, get_project

WORDS = "free prize call now win cash hello mum see you later meeting tomorrow".split()


def make_rows(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n`` distinct short texts and their labels."""
    rng = random.Random(seed)
    texts = [f"{i} " + " ".join(rng.choices(WORDS, k=12)) for i in range(n)]
    labels = [rng.choice(["ham", "spam"]) for _ in range(n)]
    return texts, labels


def write_files(folder: Path, n: int) -> dict[str, Path]:
    texts, labels = make_rows(n)
    jsonl = folder / "items.jsonl"
    with jsonl.open("w", encoding="utf-8") as out:
        for text_, label in zip(texts, labels, strict=True):
            out.write(json.dumps({"text": text_, "label": label}) + "\n")
    parquet = folder / "items.parquet"
    pq.write_table(pa.table({"text": texts, "label": labels}), parquet)
    return {"jsonl": jsonl, "parquet": parquet}


def time_import(url: str, path: Path) -> tuple[int, float]:
    """(items imported, seconds) of one import into a fresh database at ``url``."""
    engine = make_engine(url)
    try:
        upgrade(engine)
        factory = make_sessionmaker(engine)
        with transaction(factory) as session:
            create_project(session=session, name="bench", labels=["ham", "spam"])
        start = time.perf_counter()
        with transaction(factory) as session:
            project = get_project(session=session, name="bench")
            report = import_file(
                session=session, project=project, path=path, role="pool"
            )
        return report.items, time.perf_counter() - start
    finally:
        engine.dispose()


def postgres_run(server: str, path: Path) -> tuple[int, float]:
    name = f"labelwise_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        server.replace("postgresql://", "postgresql+psycopg://") + "/postgres",
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        return time_import(f"{server}/{name}", path)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="items per file")
    parser.add_argument(
        "--pg",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server URL (no database); '' skips PostgreSQL",
    )
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        files = write_files(Path(folder), args.n)
        for fmt, path in files.items():
            items, seconds = time_import(
                f"sqlite:///{Path(folder) / f'{fmt}.db'}", path
            )
            rows.append(("SQLite", fmt, items, seconds))
            if args.pg:
                items, seconds = postgres_run(args.pg, path)
                rows.append(("PostgreSQL", fmt, items, seconds))
    print("| database | format | items | seconds | items/s |")
    print("|---|---|---:|---:|---:|")
    for database, fmt, items, seconds in rows:
        print(
            f"| {database} | {fmt} | {items:,} | {seconds:.1f} "
            f"| {items / seconds:,.0f} |"
        )


if __name__ == "__main__":
    main()
