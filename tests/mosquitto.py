"""A real Mosquitto broker on loopback for the MQTT tests.

Import the fixtures into a test module (``from tests.mosquitto import mosquitto_fixture,
own_mosquitto_fixture  # noqa: F401``); tests then ask for them by name:

``mosquitto``
    one broker for the whole session (do not stop it);
``own_mosquitto``
    a broker of the test's own, which the test may stop and start again;
``paho_mqtt``
    the paho client module, for tests that need paho but no broker.

(The functions have other names than the fixtures so that a test's argument does not
shadow the import.)  Every fixture skips its test when paho-mqtt is not installed.

Each broker has two listeners on 127.0.0.1 (never another interface): ``port`` allows
anonymous clients, ``auth_port`` requires a user from a password file made with
``mosquitto_passwd`` (:data:`USER` / :data:`PASSWORD`).  Both keep their port across
``stop()``/``start()``, so that clients can reconnect.  The broker's log goes to a file
in the temporary directory and is shown when it fails to start.

Tests skip, naming the package, when Debian's ``mosquitto`` is not installed.
:class:`Subscriber` is a plain paho client that records what it receives, and
:func:`wait_until` the bounded wait every broker test uses.
"""

from __future__ import annotations

import getpass
import json
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "MosquittoBroker",
    "mosquitto_fixture",
    "own_mosquitto_fixture",
    "paho_fixture",
    "Subscriber",
    "USER",
    "PASSWORD",
    "WAIT_S",
    "free_port",
    "wait_until",
]

USER = "gateway"
PASSWORD = "s3cret-made-up"
_START_TIMEOUT_S = 5.0
_STOP_TIMEOUT_S = 5.0
_SEARCH_PATH = "/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin"
WAIT_S = 5.0  # bound on every wait for the broker; tests finish far sooner


def _binary(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path=_SEARCH_PATH)
    if path is None:
        pytest.skip(f"{name} not installed (Debian: apt-get install mosquitto)")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class MosquittoBroker:
    """A mosquitto process with an anonymous and a password-protected listener.

    Parameters
    ----------
    workdir : Path
        Empty directory for the configuration, the password file and the log.
    """

    def __init__(self, workdir: Path) -> None:
        self._binary = _binary("mosquitto")
        self.workdir = workdir
        self.port = free_port()
        self.auth_port = free_port()
        self.log_path = workdir / "mosquitto.log"
        self._process: subprocess.Popen | None = None
        self._write_config()

    def _write_config(self) -> None:
        passwd = self.workdir / "passwd"
        subprocess.run(
            [_binary("mosquitto_passwd"), "-c", "-b", str(passwd), USER, PASSWORD],
            check=True,
            capture_output=True,
            timeout=10,
        )
        passwd.chmod(0o600)
        self.config_path = self.workdir / "mosquitto.conf"
        self.config_path.write_text(
            # As root, mosquitto would switch to user "mosquitto", who cannot read
            # the test's private directory; keep whoever runs the tests.
            f"user {getpass.getuser()}\n"
            "per_listener_settings true\n"
            "persistence false\n"
            f"log_dest file {self.log_path}\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            f"listener {self.auth_port} 127.0.0.1\n"
            "allow_anonymous false\n"
            f"password_file {passwd}\n"
        )

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def url(self, prefix: str = "wmbus", *, auth: str | None = None) -> str:
        """An ``mqtt://`` URL of this broker: anonymous, or ``auth='user:pass'``."""
        if auth is None:
            return f"mqtt://127.0.0.1:{self.port}/{prefix}"
        return f"mqtt://{auth}@127.0.0.1:{self.auth_port}/{prefix}"

    def start(self) -> None:
        """Start the broker and wait (bounded) until both listeners accept."""
        if self.running:
            return
        self._process = subprocess.Popen(
            [self._binary, "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            if _accepts(self.port) and _accepts(self.auth_port):
                return
            time.sleep(0.02)
        self.stop()
        log = self.log_path.read_text() if self.log_path.exists() else "(no log)"
        raise RuntimeError(f"mosquitto did not start on 127.0.0.1:{self.port}:\n{log}")

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after a bounded wait)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=_STOP_TIMEOUT_S)


@pytest.fixture(scope="session", name="paho_mqtt")
def paho_fixture() -> Any:
    """The paho-mqtt client module; skips the test when paho-mqtt is not installed."""
    return pytest.importorskip(
        "paho.mqtt.client", reason="paho-mqtt not installed (pip install paho-mqtt)"
    )


@pytest.fixture(scope="session", name="mosquitto")
def mosquitto_fixture(
    tmp_path_factory: pytest.TempPathFactory, paho_mqtt: Any
) -> Iterator[MosquittoBroker]:
    """One broker shared by the session's tests (do not stop it)."""
    broker = MosquittoBroker(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(name="own_mosquitto")
def own_mosquitto_fixture(tmp_path: Path, paho_mqtt: Any) -> Iterator[MosquittoBroker]:
    """A broker for one test, which the test may stop and start again."""
    broker = MosquittoBroker(tmp_path)
    broker.start()
    yield broker
    broker.stop()


def wait_until(predicate: Callable[[], bool], timeout_s: float = WAIT_S) -> bool:
    """Poll ``predicate`` every 10 ms until true or ``timeout_s`` has passed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@dataclass(frozen=True)
class Received:
    """One message a :class:`Subscriber` got."""

    topic: str
    payload: Any  # decoded JSON
    retain: bool


class Subscriber:
    """A plain paho client subscribed to ``topic``; messages land in ``received``.

    Parameters
    ----------
    port : int
        Broker port on 127.0.0.1.
    topic : str
        Subscription (wildcards allowed).
    delay_s : float
        Time spent in each message callback: a slow consumer.
    """

    def __init__(self, port: int, topic: str, delay_s: float = 0.0) -> None:
        paho = pytest.importorskip("paho.mqtt.client", reason="paho-mqtt not installed")
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._delay_s = delay_s
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(topic, qos=1)
        if not self._subscribed.wait(WAIT_S):
            raise RuntimeError(f"no SUBACK from the broker on port {port}")

    def _on_message(self, _client, _userdata, message) -> None:
        if self._delay_s:
            time.sleep(self._delay_s)
        with self._lock:
            self.received.append(
                Received(message.topic, json.loads(message.payload), message.retain)
            )

    def messages(self, topic_part: str = "") -> list[Received]:
        """Messages so far whose topic contains ``topic_part``."""
        with self._lock:
            return [m for m in self.received if topic_part in m.topic]

    def wait_for(self, count: int, topic_part: str = "") -> list[Received]:
        """Wait (bounded) until ``count`` such messages are in; return them all."""
        wait_until(lambda: len(self.messages(topic_part)) >= count)
        return self.messages(topic_part)

    def sync(self, marker_topic: str) -> list[Received]:
        """Every message before a marker we publish to ``marker_topic`` ourselves.

        The broker delivers to one client in order, and sends retained messages right
        after the SUBACK: once our marker is back, nothing earlier is on its way.
        ``marker_topic`` must match the subscription; the marker is left out.
        """
        self.client.publish(marker_topic, b'{"marker": true}', qos=1)
        if not wait_until(lambda: bool(self.messages(marker_topic))):
            raise RuntimeError(f"marker on {marker_topic} never came back")
        return [m for m in self.messages() if m.topic != marker_topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
