"""Model choice and the bundled model: assembled once, hash-checked, never downloaded."""

from __future__ import annotations

import subprocess
import sys

import pytest

from roleplay.core.errors import RoleplayError
from roleplay.speech import models


@pytest.fixture()
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ROLEPLAY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ROLEPLAY_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.delenv("ROLEPLAY_MODEL", raising=False)
    return tmp_path


def test_base_model_is_assembled_and_verified(fresh_cache):
    path = models.ensure_base_model()
    assert (path / "model.bin").stat().st_size > 100_000_000
    assert (path / ".verified").read_text() == models.BASE_MODEL_SHA256
    assert models.ensure_base_model() == path  # second time: from the cache


def test_damaged_parts_are_refused_with_a_fix(fresh_cache, monkeypatch):
    p1, p2 = fresh_cache / "model.bin.part1", fresh_cache / "model.bin.part2"
    p1.write_bytes(b"a" * 1000)
    p2.write_bytes(b"b" * 1000)
    meta = fresh_cache / "meta"
    meta.mkdir()
    monkeypatch.setattr(models, "_part_files", lambda: (p1, p2, meta))
    with pytest.raises(RoleplayError, match="damaged.*reinstall"):
        models.ensure_base_model()


def test_truncated_cached_model_is_rebuilt(fresh_cache):
    path = models.ensure_base_model()
    with open(path / "model.bin", "r+b") as f:
        f.truncate(1000)
    assert models.ensure_base_model() == path
    assert (path / "model.bin").stat().st_size > 100_000_000


def test_directory_without_tokenizer_is_refused(fresh_cache):
    d = fresh_cache / "mymodel"
    d.mkdir()
    (d / "model.bin").write_bytes(b"x")
    (d / "config.json").write_text("{}")
    with pytest.raises(RoleplayError, match="lacks tokenizer.json"):
        models.choose_model(str(d))


def test_uncached_hub_name_is_never_downloaded(fresh_cache, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(fresh_cache / "hf"))
    with pytest.raises(RoleplayError, match="never downloads"):
        models.choose_model("small")


def test_precedence_flag_env_config_default(fresh_cache, monkeypatch):
    base = models.ensure_base_model()
    other = fresh_cache / "other"
    other.mkdir()
    for f in ("model.bin", "config.json", "tokenizer.json"):
        (other / f).write_text("x")
    assert models.choose_model(None).source == "default"
    (fresh_cache / "config.toml").write_text(f'model = "{other}"\n')
    assert models.choose_model(None).source == "config"
    monkeypatch.setenv("ROLEPLAY_MODEL", str(base))
    assert models.choose_model(None).path == base
    assert models.choose_model(str(other)).source == "flag"


def test_bad_config_file_is_one_line(fresh_cache):
    (fresh_cache / "config.toml").write_text("model = [unclosed\n")
    with pytest.raises(RoleplayError, match="config.toml: not valid TOML"):
        models.choose_model(None)


def test_cli_missing_model_directory_is_one_line_error(tmp_path):
    wav = tmp_path / "a.wav"
    import numpy as np
    import soundfile

    soundfile.write(wav, np.zeros(16000, dtype=np.float32), 16000)
    r = subprocess.run([sys.executable, "-m", "roleplay", "analyse", "--trainee", str(wav),
                        "--model", str(tmp_path / "nope")], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "does not exist" in r.stderr
    assert "Traceback" not in r.stderr
