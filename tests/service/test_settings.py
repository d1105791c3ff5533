import re
from pathlib import Path

import pytest

from labelwise.exceptions import ConfigError
from labelwise.service.settings import PLACEHOLDER_SECRET, Settings, load_settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in Settings.model_fields:
        monkeypatch.delenv(f"LABELWISE_{name.upper()}", raising=False)


def _sections() -> dict[str, str]:
    parts = re.split(r"^## `(\w+)`$", DOCS.read_text(), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_setting_is_documented(name):
    sections = _sections()
    assert name in sections, f"docs/settings.md has no '## `{name}`' section"
    body = sections[name]
    assert f"`LABELWISE_{name.upper()}`" in body
    default = Settings.model_fields[name].default
    assert "Default:" in body
    if default is not None:
        assert f"`{default}`" in body


def test_docs_name_no_unknown_settings():
    assert set(_sections()) == set(Settings.model_fields)


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.database_url is None
    assert settings.dev is False
    assert settings.secret_key == PLACEHOLDER_SECRET
    assert settings.lease_ttl_seconds == 900
    assert settings.retrain_every == 50
    assert settings.sqlalchemy_url() == f"sqlite:///{tmp_path / 'labelwise.db'}"
    assert settings.resolved_data_dir() == tmp_path / "labelwise-data"
    assert "change-me" not in repr(settings)


def test_environment_variables_are_read(monkeypatch, tmp_path):
    monkeypatch.setenv("LABELWISE_DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("LABELWISE_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("LABELWISE_DEV", "1")
    monkeypatch.setenv("LABELWISE_SECRET_KEY", "s3cret")
    monkeypatch.setenv("LABELWISE_LEASE_TTL_SECONDS", "60")
    monkeypatch.setenv("LABELWISE_RETRAIN_EVERY", "7")
    settings = load_settings()
    assert settings.database_url == "postgresql://u@h/db"
    assert settings.sqlalchemy_url() == "postgresql+psycopg://u@h/db"
    assert settings.resolved_data_dir() == tmp_path / "d"
    assert settings.dev is True
    assert settings.secret_key == "s3cret"
    assert settings.lease_ttl_seconds == 60
    assert settings.retrain_every == 7


def test_empty_environment_variable_is_ignored(monkeypatch):
    monkeypatch.setenv("LABELWISE_RETRAIN_EVERY", "")
    assert load_settings().retrain_every == 50


def test_data_dir_defaults_beside_the_sqlite_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'sub' / 'x.db'}")
    assert settings.resolved_data_dir() == tmp_path / "sub" / "labelwise-data"
    postgres = Settings(database_url="postgresql://u@h/db")
    assert postgres.resolved_data_dir() == tmp_path / "labelwise-data"


def test_bad_value_names_the_environment_variable(monkeypatch):
    monkeypatch.setenv("LABELWISE_LEASE_TTL_SECONDS", "soon")
    with pytest.raises(ConfigError, match="LABELWISE_LEASE_TTL_SECONDS") as info:
        load_settings()
    assert "'soon'" in info.value.message
    assert "docs/settings.md" in (info.value.hint or "")


def test_non_positive_retrain_every_is_refused():
    with pytest.raises(ConfigError, match="LABELWISE_RETRAIN_EVERY"):
        load_settings(retrain_every=0)


def test_unknown_override_is_refused():
    with pytest.raises(ConfigError, match="retrain_evry"):
        load_settings(retrain_evry=3)


def test_placeholder_secret_refused_outside_dev():
    with pytest.raises(ConfigError, match="LABELWISE_SECRET_KEY") as info:
        Settings().check_production()
    assert "LABELWISE_DEV" in (info.value.hint or "")
    with pytest.raises(ConfigError, match="empty"):
        Settings(secret_key="  ").check_production()
    Settings(dev=True).check_production()
    Settings(secret_key="a-real-secret-value").check_production()


def test_settings_are_frozen():
    settings = Settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.dev = True
