"""Settings are read from STREAM_TAGGER_* variables, are frozen, and hide secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from stream_tagger.settings import Settings


def test_env_variables_set_every_kind_of_field(monkeypatch):
    monkeypatch.setenv("STREAM_TAGGER_BROKERS", "k1:9092,k2:9092")
    monkeypatch.setenv("STREAM_TAGGER_INPUT_TOPIC", "in")
    monkeypatch.setenv("STREAM_TAGGER_URI_ROOTS", '["/data/a", "/data/b"]')
    monkeypatch.setenv("STREAM_TAGGER_BATCH_SIZE", "16")
    monkeypatch.setenv("STREAM_TAGGER_DECODE_TIMEOUT_S", "2.5")
    monkeypatch.setenv("STREAM_TAGGER_BACKEND", "onnxruntime")

    settings = Settings(_env_file=None)

    assert settings.input_topic == "in"
    assert settings.uri_roots == [Path("/data/a"), Path("/data/b")]
    assert settings.batch_size == 16 and settings.decode_timeout_s == 2.5
    assert settings.as_kafka_kwargs()["bootstrap_servers"] == ["k1:9092", "k2:9092"]


def test_sasl_ssl_options_pass_through_to_kafka_python(monkeypatch):
    monkeypatch.setenv("STREAM_TAGGER_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("STREAM_TAGGER_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("STREAM_TAGGER_SASL_USERNAME", "tagger")
    monkeypatch.setenv("STREAM_TAGGER_SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("STREAM_TAGGER_SSL_CAFILE", "/etc/kafka/ca.pem")

    settings = Settings(_env_file=None)
    kwargs = settings.as_kafka_kwargs()

    assert kwargs["security_protocol"] == "SASL_SSL" and kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "tagger" and kwargs["sasl_plain_password"] == "s3cret"
    assert kwargs["ssl_cafile"] == "/etc/kafka/ca.pem"
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.public_dict())


def test_dotenv_file_is_read(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("STREAM_TAGGER_GROUP_ID=from-dotenv\n")
    assert Settings(_env_file=env_file).group_id == "from-dotenv"


def test_invalid_values_are_refused(monkeypatch):
    monkeypatch.setenv("STREAM_TAGGER_BACKEND", "cuda-magic")
    with pytest.raises(ValidationError):
        Settings(_env_file=None)


def test_settings_are_frozen():
    settings = Settings(_env_file=None)
    with pytest.raises(ValidationError):
        settings.batch_size = 3


def test_consumer_never_auto_commits_and_fetch_wait_is_low():
    kwargs = Settings(_env_file=None).consumer_kwargs()
    assert kwargs["enable_auto_commit"] is False
    assert kwargs["fetch_max_wait_ms"] <= 20
