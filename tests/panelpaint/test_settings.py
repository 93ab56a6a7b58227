"""Settings are read from the environment once and validated with clear errors."""
import pytest

from panelpaint.settings import SettingsError, load_settings


def test_defaults_live_under_var(tmp_path, monkeypatch):
    for name in ("DATABASE_URL", "REDIS_URL", "STORAGE_ROOT"):
        monkeypatch.delenv(name, raising=False)
    s = load_settings(var_dir=tmp_path)
    assert s.database_url == f"sqlite:///{tmp_path.resolve() / 'panelpaint.db'}"
    assert s.storage_root == tmp_path / "storage"
    assert s.embedded and s.effective_redis_url().startswith("redis://127.0.0.1:")


def test_standard_names_are_read(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db:5432/pp")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/1")
    monkeypatch.setenv("PANELPAINT_MAX_ATTEMPTS", "5")
    monkeypatch.setenv("PANELPAINT_PANEL_CHECK_BELOW", "0.75")
    s = load_settings(var_dir=tmp_path)
    assert s.database_url == "postgresql+psycopg://u@db:5432/pp"
    assert s.redis_url == "redis://cache:6379/1" and not s.embedded
    assert s.max_attempts == 5 and s.panel_check_below == 0.75


@pytest.mark.parametrize(
    "env, fragment",
    [
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"PANELPAINT_MAX_ATTEMPTS": "zero"}, "MAX_ATTEMPTS"),
        ({"PANELPAINT_PANEL_CHECK_BELOW": "1.5"}, "PANEL_CHECK_BELOW"),
        ({"PANELPAINT_TASK_SOFT_TIME_LIMIT": "500", "PANELPAINT_TASK_TIME_LIMIT": "400"}, "SOFT_TIME_LIMIT"),
    ],
)
def test_invalid_settings_name_the_variable(monkeypatch, tmp_path, env, fragment):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SettingsError, match=fragment):
        load_settings(var_dir=tmp_path)


def test_secret_key_is_generated_once_and_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    s = load_settings(var_dir=tmp_path)
    key = s.effective_secret_key()
    assert len(key) == 64 and load_settings(var_dir=tmp_path).effective_secret_key() == key
