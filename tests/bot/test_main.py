"""`python -m bot`: configuration problems end start-up with one clear line and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.db.migrate import current_revision, head_revision
from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.not-a-real-token-000000000000000"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'data' / 'bot.db'}")


def run_main(capsys, *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    err = capsys.readouterr().err
    return exited.value.code, err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and " INFO " not in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_missing_token(capsys):
    code, err = run_main(capsys)
    assert code == 2
    assert one_line(err).startswith("error: DISCORD_TOKEN is not set")


def test_missing_model_directory(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("DISCORD_TOKEN", TOKEN)
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "nope"))
    code, err = run_main(capsys, "run")
    line = one_line(err)
    assert code == 2 and "model directory" in line and "does not exist" in line
    assert TOKEN not in err


def test_unreadable_model_directory(capsys, monkeypatch, tmp_path):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{ not json")
    monkeypatch.setenv("DISCORD_TOKEN", TOKEN)
    monkeypatch.setenv("MODEL_DIR", str(broken))
    code, err = run_main(capsys, "run")
    line = one_line(err)
    assert code == 2 and line.startswith(f"error: cannot load the model from {broken}")


def test_unwritable_database(capsys, monkeypatch, tmp_path, tiny_model_dir):
    (tmp_path / "a-file").write_text("not a directory")
    monkeypatch.setenv("DISCORD_TOKEN", TOKEN)
    monkeypatch.setenv("MODEL_DIR", str(tiny_model_dir))
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'a-file' / 'bot.db'}")
    code, err = run_main(capsys, "run")
    line = one_line(err)
    assert code == 2 and "is not writable" in line and "DATABASE_URL" in line


def test_invalid_setting(capsys, monkeypatch):
    monkeypatch.setenv("METRICS_PORT", "lots")
    code, err = run_main(capsys, "migrate")
    assert code == 2 and one_line(err).startswith("error: invalid setting METRICS_PORT")


def test_migrate_command(capsys, tmp_path):
    assert main(["migrate"]) == 0
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'bot.db'}"
    assert current_revision(url) == head_revision()
    assert "is at revision" in capsys.readouterr().out


def test_real_process_exit_code_and_single_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k.upper() not in {f.upper() for f in Settings.model_fields}}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: DISCORD_TOKEN is not set: put your bot token in .env or the environment "
        "(see .env.example)"
    ]
