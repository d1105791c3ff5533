from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from labelwise.service.store.engine import make_engine, normalize_url
from labelwise.service.store.migrate import current_revision, head_revision, upgrade
from labelwise.service.store.schema import Base


def test_migrations_create_the_whole_schema(engine):
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"the models drifted from the migrations: {diff}"


def test_upgrade_is_idempotent(engine):
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision()


def test_sqlite_pragmas(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_url_normalisation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert normalize_url(None) == f"sqlite:///{tmp_path / 'labelwise.db'}"
    assert normalize_url("postgresql://postgres@127.0.0.1/x") == (
        "postgresql+psycopg://postgres@127.0.0.1/x"
    )
    assert normalize_url("data.db") == f"sqlite:///{tmp_path / 'data.db'}"
