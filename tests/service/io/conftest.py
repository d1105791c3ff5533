"""Import/export test helpers: projects, imports, exports, database snapshots."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import select

from labelwise.service.io import export_project, import_file
from labelwise.service.store.engine import transaction
from labelwise.service.store.projects import create_project, get_project
from labelwise.service.store.schema import Base


@pytest.fixture
def make_project(session_factory):
    """Create a project: make_project(name, labels=..., multi_label=..., ...)."""

    def make(name="p", labels=("ham", "spam"), **options):
        with transaction(session_factory) as session:
            create_project(session=session, name=name, labels=list(labels), **options)
        return name

    return make


@pytest.fixture
def run_import(session_factory):
    """Import a file into a project in one transaction; the report."""

    def run(name, path, role="pool", **options):
        with transaction(session_factory) as session:
            project = get_project(session=session, name=name)
            return import_file(
                session=session, project=project, path=path, role=role, **options
            )

    return run


@pytest.fixture
def run_export(session_factory):
    """Export a project to a file; the number of items written."""

    def run(name, path, fmt, role=None):
        with transaction(session_factory) as session:
            project = get_project(session=session, name=name)
            return export_project(
                session=session, project=project, path=path, format=fmt, role=role
            )

    return run


@pytest.fixture
def snapshot(engine, store_url):
    """Every row of the database: sqlite3 iterdump, or each table by primary key."""

    def take():
        if engine.dialect.name == "sqlite":
            connection = sqlite3.connect(engine.url.database)
            try:
                return list(connection.iterdump())
            finally:
                connection.close()
        dump = {}
        with engine.connect() as connection:
            for table in Base.metadata.sorted_tables:
                order = list(table.primary_key.columns)
                rows = connection.execute(select(table).order_by(*order)).all()
                dump[table.name] = [tuple(map(repr, row)) for row in rows]
        return dump

    return take


@pytest.fixture
def row_counts(engine):
    """Rows per table."""

    def take():
        with engine.connect() as connection:
            return {
                table.name: len(connection.execute(select(table)).all())
                for table in Base.metadata.sorted_tables
            }

    return take
