"""`stream-tagger run` against a listener that wants TLS and a SCRAM login: it serves with the right
settings (both delivery modes), and exits 2 at once, naming the setting, with a wrong CA or password."""

from __future__ import annotations

import uuid

import pytest
from delivery_helpers import make_topics, produce_events, read_all, wait_until, worker_env

RESULTS_TIMEOUT_S = 90.0
#: A misconfigured worker must say so long before kafka-python's 30 s bootstrap timeout.
CONFIG_ERROR_WITHIN_S = 25.0


def sasl_ssl(broker, tls_files, sasl_login, **overrides: str) -> dict[str, str]:
    user, password = sasl_login
    return {"STREAM_TAGGER_SECURITY_PROTOCOL": "SASL_SSL", "STREAM_TAGGER_SSL_CAFILE": str(tls_files.cafile),
            "STREAM_TAGGER_SASL_MECHANISM": "SCRAM-SHA-256", "STREAM_TAGGER_SASL_USERNAME": user,
            "STREAM_TAGGER_SASL_PASSWORD": password, **overrides}


@pytest.mark.parametrize("delivery", ["at_least_once", "exactly_once"])
def test_worker_serves_through_sasl_ssl(secure_broker, tls_files, sasl_login, engines, media, start_worker, delivery):
    # Given topics behind SASL_SSL and a worker with the right TLS and SCRAM settings
    topics = make_topics(secure_broker)
    security = sasl_ssl(secure_broker, tls_files, sasl_login, STREAM_TAGGER_DELIVERY=delivery)
    worker = start_worker(worker_env(secure_broker, topics, f"tls-{uuid.uuid4().hex[:6]}", media, engines, **security))

    # When events arrive
    ids = [f"tls-{delivery}-{index}" for index in range(4)]
    produce_events(secure_broker, topics.input, media, ids)

    # Then it tags them (read back over SASL_SSL too) and reports ready
    def tagged() -> set[str]:
        return {record["video_id"] for record in read_all(secure_broker, topics.output, "read_committed", 1.0)}

    assert wait_until(lambda: tagged() >= set(ids), RESULTS_TIMEOUT_S), worker.log_tail()
    assert worker.get("/readyz")[0] == 200


@pytest.mark.parametrize(("override", "setting"), [
    ({"STREAM_TAGGER_SASL_PASSWORD": "wrong"}, "STREAM_TAGGER_SASL_PASSWORD"),
    ({"STREAM_TAGGER_SSL_CAFILE": "other"}, "STREAM_TAGGER_SSL_CAFILE"),
    ({"STREAM_TAGGER_SECURITY_PROTOCOL": "PLAINTEXT"}, "STREAM_TAGGER_SECURITY_PROTOCOL"),
])
def test_misconfigured_worker_exits_2_naming_the_setting(secure_broker, tls_files, sasl_login, engines, media,
                                                         start_worker, override, setting):
    if override.get("STREAM_TAGGER_SSL_CAFILE") == "other":
        override = {"STREAM_TAGGER_SSL_CAFILE": str(tls_files.other_cafile)}
    topics = make_topics(secure_broker)
    env = worker_env(secure_broker, topics, f"bad-{uuid.uuid4().hex[:6]}", media, engines,
                     **{**sasl_ssl(secure_broker, tls_files, sasl_login), **override})
    worker = start_worker(env)
    assert wait_until(lambda: worker.process.poll() is not None, CONFIG_ERROR_WITHIN_S), worker.log_tail()
    assert worker.process.returncode == 2, worker.log_tail()
    assert setting in worker.log_tail()
