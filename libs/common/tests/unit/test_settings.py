"""Settings: environment prefixes, and production refusing plaintext connections."""

from __future__ import annotations

import pytest

from hvc.common.settings import (
    HvcSettings,
    KafkaSettings,
    MongoSettings,
    Profile,
    check_production,
)


def test_settings_read_their_own_prefix(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("MONGO_DATABASE", "x")
    monkeypatch.setenv("HVC_HTTP_PORT", "9999")
    assert KafkaSettings().bootstrap_servers == "k1:9092,k2:9092"
    assert MongoSettings().database == "x"
    assert HvcSettings().http_port == 9999


def test_production_refuses_plaintext_kafka_and_mongo():
    with pytest.raises(ValueError, match="SASL_SSL") as err:
        check_production(HvcSettings(profile=Profile.PRODUCTION), KafkaSettings(), MongoSettings())
    assert "TLS" in str(err.value)
    assert "authenticate" in str(err.value)
    assert "HVC_SERVICE_KEY" in str(err.value)  # the gateway's calls unsigned otherwise


def test_production_accepts_sasl_ssl_and_tls_mongo():
    kafka = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="tiering",
        sasl_password="s3cret",
    )
    mongo = MongoSettings(uri="mongodb://tiering:pw@mongo:27017/?tls=true")
    with pytest.raises(ValueError, match="HVC_SERVICE_KEY"):
        check_production(HvcSettings(profile=Profile.PRODUCTION, service_key="short"), kafka, mongo)
    key = "k" * 32
    check_production(HvcSettings(profile=Profile.PRODUCTION, service_key=key), kafka, mongo)
    assert kafka.client_kwargs()["sasl_plain_username"] == "tiering"


def test_sasl_without_credentials_is_refused():
    with pytest.raises(ValueError, match="SASL needs"):
        KafkaSettings(security_protocol="SASL_SSL")


def test_development_allows_plaintext():
    check_production(HvcSettings(), KafkaSettings(), MongoSettings())
    assert HvcSettings().profile is Profile.DEVELOPMENT
