"""``MqttTransport``: the bus on a real MQTT broker (paho-mqtt 2.x).

Threading: paho runs one network thread per transport. Subscription
callbacks run **on that thread**, one message at a time, in arrival order;
a slow callback delays every later message of this transport. Wrap the
transport in ``iot.bus.SerialTransport`` to move the work onto a service's
own thread. An exception raised by a callback is logged with its topic and
never stops the network loop.

Connection: the constructor connects and waits for the broker's CONNACK; it
raises ``ConnectionError`` (naming the URL, what failed and what to do) rather
than returning a transport that is not connected. After that, a lost
connection is re-made automatically with exponential backoff, and every
subscription is re-made on each (re)connect.

Security: the URL may carry a login and ask for TLS (``mqtts://``, see
``iot.mqtt_url``), or ``username=``/``password=``/``tls_ca=`` give them
apart. The password never appears in a log line or an error: ``self.url``
is the URL with its password redacted. With TLS the broker's certificate
chain and host name are checked; a failed check is a ``ConnectionError``.

Protocol: MQTT 3.1.1 unless ``protocol=5``. Under MQTT 5 a subscription may be
shared (``$share/<group>/<filter>``): the broker hands each matching message to
one member of the group. Callbacks are matched on the filter without its
``$share/<group>/`` prefix. Retained messages are never sent on a shared
subscription (MQTT 5, 4.8.2), so a retained status is read without one.
``unsubscribe`` waits for the broker's UNSUBACK before it stops delivering, so
nothing the broker already sent is dropped on the floor.

Latency: Nagle's algorithm is off on the client's socket (``TCP_NODELAY``), so a
small event is sent at once rather than after the broker's delayed ACK.

Status: with ``status_topic`` (``smartstore/<store>/<kind>/<device>/status``)
the broker holds a retained ``DeviceStatus``: ``online`` after each connect,
``offline`` from the Last Will when the client dies without disconnecting,
and ``offline`` again on a clean ``close()``.

Crash safety (docs/reliability.md, "Crash safety"): with ``session_expiry_s``
(MQTT 5) the session outlives the connection: the broker keeps the
subscriptions, and queues QoS 1 messages for a client that died, for that
many seconds; the same client id picks them up when it comes back. With
``on_receive`` every message is handed to that hook first, on the network
thread, and acknowledged only after it returned: a hook that writes the
message to a journal makes "acknowledged" mean "safe", so a ``kill -9``
loses nothing the broker was told it may forget.

>>> parse_broker_url("mqtt://127.0.0.1:1883")
('127.0.0.1', 1883)
>>> parse_broker_url("mqtts://demo-brain:s3cret@broker.local")
('broker.local', 8883)
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from iot.bus import topic_matches
from iot.mqtt_url import BrokerAddress, parse_broker
from iot.payloads import DeviceStatus
from iot.topics import TOPICS, match_topic

__all__ = ["PROTOCOLS", "MqttTransport", "parse_broker_url"]

log = logging.getLogger(__name__)

RawCallback = Callable[[str, bytes], None]
_LOGIN_REFUSED = ("bad user name or password", "not authorized")
_MAX_EXPIRY_S = 0xFFFFFFFF  # MQTT 5's session expiry interval is four bytes (this: never)
_MAX_ROUTES = 10_000  # topics whose callbacks are remembered (see MqttTransport._targets)
# protocol= values: paho's numbers for MQTT 3.1.1 and MQTT 5.
PROTOCOLS = {4: paho.MQTTv311, 5: paho.MQTTv5}


def parse_broker_url(url: str) -> tuple[str, int]:
    """A broker URL (``iot.mqtt_url``) → ``(host, port)``; a bad one: ValueError saying why."""
    address = parse_broker(url)
    return address.host, address.port


def _address(
    url: str, client_id: str, username: str | None, password: str | None, tls_ca: str | None
) -> BrokerAddress:
    """The URL's address, for ``client_id``, with the separately given login and CA on top."""
    address = parse_broker(url).for_client(client_id)
    if (username is None) != (password is None):
        raise ValueError(
            f"broker {address.redacted}: give username= and password= together, or neither"
        )
    if username is not None:
        if address.username is not None:
            raise ValueError(
                f"broker {address.redacted} already names a login; drop it or username=/password="
            )
        address = replace(address, username=username, password=password)
    if tls_ca is not None:
        if not address.tls:
            raise ValueError(f"tls_ca= needs a TLS broker URL (mqtts://), not {address.redacted}")
        address = replace(address, ca_file=tls_ca)
    return address


def _check_session(protocol: int, session_expiry_s: int) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol={protocol!r}: use 4 (MQTT 3.1.1) or 5 (MQTT 5)")
    if session_expiry_s and protocol != 5:
        raise ValueError(
            f"session_expiry_s={session_expiry_s}: a session that outlives the connection "
            "needs MQTT 5; pass protocol=5"
        )
    if not 0 <= session_expiry_s <= _MAX_EXPIRY_S:
        raise ValueError(f"session_expiry_s={session_expiry_s}: give 0..{_MAX_EXPIRY_S}")


def _share_free(topic_filter: str) -> str:
    """The filter a shared subscription (``$share/<group>/<filter>``) matches topics with."""
    if topic_filter.startswith("$share/"):
        return topic_filter.split("/", 2)[2] if topic_filter.count("/") >= 2 else topic_filter
    return topic_filter


def _no_delay(sock: object) -> None:
    """Turn Nagle's algorithm off: a small message waits for no ACK (paho leaves it on).

    With it on, a QoS 1 event sent right after another small packet waits for the
    peer's delayed ACK, about 40 ms on Linux, on every hop.
    """
    if isinstance(sock, socket.socket):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            log.debug("TCP_NODELAY not set: %s", exc)


class MqttTransport:
    """``iot.bus.Transport`` over MQTT 3.1.1 (or 5). See the module docstring for threading."""

    def __init__(
        self,
        url: str,
        client_id: str,
        *,
        status_topic: str | None = None,
        username: str | None = None,
        password: str | None = None,
        tls_ca: str | None = None,
        connect_timeout_s: float = 10.0,
        keepalive_s: int = 30,
        reconnect_max_s: int = 30,
        now: Callable[[], float] = time.time,
        protocol: int = 4,
        session_expiry_s: int = 0,
        on_receive: RawCallback | None = None,
    ) -> None:
        _check_session(protocol, session_expiry_s)
        self.protocol = protocol
        self.session_expiry_s = session_expiry_s
        self.on_receive = on_receive
        self.receive_errors = 0
        address = _address(url, client_id, username, password, tls_ca)
        self.url = address.redacted  # never the password: this goes into logs and errors
        self.host, self.port = address.host, address.port
        self.username = address.username
        self.client_id = client_id
        self.now = now
        self.connect_timeout_s = connect_timeout_s
        self._status_device: str | None = None
        self.status_topic = status_topic
        if status_topic is not None:
            found = match_topic(status_topic)
            if found is None or found[0] is not TOPICS["status"]:
                raise ValueError(
                    f"status_topic {status_topic!r} is not a status topic; use "
                    "smartstore/<store>/<kind>/<device>/status"
                )
            self._status_device = found[2]
        self._lock = threading.Lock()
        self._subs: list[tuple[str, str, RawCallback, int]] = []  # (filter, match filter, cb, qos)
        self._routes: dict[str, list[RawCallback]] = {}  # topic -> its callbacks; see _targets
        self._connected = threading.Event()
        self._first_result: tuple[bool, str] | None = None
        self._first_done = threading.Event()
        self._closing = False
        self._suback: dict[int, threading.Event] = {}  # SUBACK and UNSUBACK waiters by mid
        self._loop_ident: int | None = None
        self.callback_errors = 0

        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=PROTOCOLS[protocol],
            # MQTT 5 has no clean session flag: connect() asks for a clean start instead.
            clean_session=True if protocol == 4 else None,
            # A write-ahead hook decides when a message is safe: acknowledge it only then.
            manual_ack=on_receive is not None,
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = self._on_unsubscribe
        client.reconnect_delay_set(min_delay=1, max_delay=reconnect_max_s)
        client.connect_timeout = connect_timeout_s
        if address.username is not None:
            client.username_pw_set(address.username, address.password)
        if address.tls:
            try:
                client.tls_set_context(address.tls_context())
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(
                    f"broker {self.url}: cannot load the CA file {address.ca_file!r} "
                    f"({exc}); name a PEM file of the CA that signed the broker's certificate"
                ) from None
        self._client = client
        self._set_will()
        self._connect(keepalive_s)

    # --- connection ---

    @property
    def connected(self) -> bool:
        """True only between a successful CONNACK and the next disconnect."""
        return self._connected.is_set()

    def _fail(self, what: str, hint: str | None = None) -> ConnectionError:
        who = self.client_id if self.username is None else f"{self.client_id} ({self.username})"
        hint = hint or (
            "start a broker there (e.g. mosquitto -p PORT); smartstore demo and eval can also "
            "omit --broker to use an embedded one"
        )
        return ConnectionError(
            f"cannot connect to the MQTT broker at {self.url} as {who!r}: {what}; {hint}"
        )

    def _connect(self, keepalive_s: int) -> None:
        deadline = time.monotonic() + self.connect_timeout_s
        try:
            if self.protocol == 5:
                props = None
                if self.session_expiry_s:
                    props = Properties(PacketTypes.CONNECT)
                    props.SessionExpiryInterval = self.session_expiry_s
                self._client.connect(
                    self.host,
                    self.port,
                    keepalive=keepalive_s,
                    clean_start=not self.session_expiry_s,
                    properties=props,
                )
            else:
                self._client.connect(self.host, self.port, keepalive=keepalive_s)
        except ssl.SSLError as exc:
            raise self._fail(
                f"TLS failed: {type(exc).__name__}: {exc}",
                "check that ca= names the CA that signed the broker's certificate and that the "
                "URL's host is a name in that certificate",
            ) from None
        except OSError as exc:
            raise self._fail(f"{type(exc).__name__}: {exc}") from exc
        self._client.loop_start()
        if not self._first_done.wait(max(0.0, deadline - time.monotonic())):
            self._stop_loop()
            raise self._fail(f"no CONNACK within {self.connect_timeout_s:g} s")
        assert self._first_result is not None
        ok, why = self._first_result
        if not ok:
            self._stop_loop()
            login = any(w in why.lower() for w in _LOGIN_REFUSED)
            raise self._fail(
                f"the broker refused the connection ({why})",
                "check the login (USER:PASSWORD@ in the URL, username=/password=, or the "
                "accounts= file) against the broker's password file"
                if login
                else None,
            )
        log.info("connected to %s as %s", self.url, self.client_id)

    def _stop_loop(self) -> None:
        self._closing = True
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        self._loop_ident = threading.get_ident()
        if reason.is_failure:
            log.error("MQTT broker %s refused %s: %s", self.url, self.client_id, reason)
            if self._first_result is None:
                self._first_result = (False, str(reason))
                self._first_done.set()
            return
        _no_delay(client.socket())
        with self._lock:
            subs = [(f, qos) for f, _, _, qos in self._subs]
        # Clean sessions: the broker forgot our subscriptions, so make them again.
        for topic_filter, qos in subs:
            client.subscribe(topic_filter, qos)
        self._publish_status("online")
        self._connected.set()
        if self._first_result is None:
            self._first_result = (True, "")
            self._first_done.set()
        else:
            log.warning(
                "reconnected to %s as %s; %d subscription(s) re-made",
                self.url,
                self.client_id,
                len(subs),
            )

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        self._connected.clear()
        if not self._closing:
            log.warning("lost connection to %s (%s); reconnecting with backoff", self.url, reason)
            self._set_will()  # the next connect carries a fresh offline id and time

    def _set_will(self) -> None:
        if self.status_topic is not None:
            self._client.will_set(
                self.status_topic, self._status_bytes("offline"), qos=1, retain=True
            )

    def _status_bytes(self, state: str) -> bytes:
        assert self._status_device is not None
        status = DeviceStatus(
            id=f"{self._status_device}.status.{uuid.uuid4().hex[:16]}",
            event_time_s=max(self.now(), 946_684_800.0),
            device_id=self._status_device,
            state="online" if state == "online" else "offline",
        )
        return status.model_dump_json().encode()

    def _publish_status(self, state: str) -> paho.MQTTMessageInfo | None:
        if self.status_topic is None:
            return None
        data = self._status_bytes(state)
        return self._client.publish(self.status_topic, data, qos=1, retain=True)

    # --- Transport ---

    def publish(self, topic: str, data: bytes, qos: int = 0, retain: bool = False) -> None:
        """Queue a message; QoS 1/2 messages published while disconnected go out on reconnect."""
        self._publish(topic, data, qos, retain)

    def publish_tracked(self, topic: str, data: bytes, qos: int = 1) -> Callable[[], bool]:
        """Queue a QoS 1/2 message; returns ``acknowledged()``: has the broker got it yet?

        For an outbox: forget the message once that says True. It never does if this
        process dies first, nor for a message paho could not even queue.
        """
        if qos < 1:
            raise ValueError(f"qos={qos}: only a QoS 1 or 2 message is acknowledged")
        info = self._publish(topic, data, qos, False)

        def acknowledged() -> bool:
            # Not info.is_published(): it raises for a message queued while disconnected,
            # even after the reconnect has sent it and the broker acknowledged it.
            return bool(getattr(info, "_published", False))

        return acknowledged

    def _publish(self, topic: str, data: bytes, qos: int, retain: bool) -> paho.MQTTMessageInfo:
        info = self._client.publish(topic, data, qos=qos, retain=retain)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN) or (
            info.rc == paho.MQTT_ERR_NO_CONN and qos == 0
        ):
            log.warning(
                "publish on %s (qos %d) not sent: %s", topic, qos, paho.error_string(info.rc)
            )
        return info

    def subscribe(self, topic_filter: str, callback: RawCallback, qos: int = 0) -> None:
        """Remember the subscription (re-made on every reconnect) and make it now.

        When called from outside the network thread and connected, waits (up to
        ``connect_timeout_s``) for the broker's SUBACK, so a message published
        after this returns is delivered.
        """
        with self._lock:
            known = any(f == topic_filter for f, _, _, _ in self._subs)
            self._subs.append((topic_filter, _share_free(topic_filter), callback, qos))
            self._routes.clear()
        if known or not self.connected:
            return
        done = threading.Event()
        with self._lock:
            rc, mid = self._client.subscribe(topic_filter, qos)
            if rc == paho.MQTT_ERR_SUCCESS and mid is not None:
                self._suback[mid] = done
        if rc != paho.MQTT_ERR_SUCCESS:
            log.warning(
                "subscribe to %s deferred to the next connect: %s",
                topic_filter,
                paho.error_string(rc),
            )
            return
        if threading.get_ident() != self._loop_ident and not done.wait(self.connect_timeout_s):
            log.warning("no SUBACK for %s within %g s", topic_filter, self.connect_timeout_s)

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Any,
    ) -> None:
        self._acked("a subscription", mid, reason_codes, logging.ERROR)

    def _acked(self, what: str, mid: int, reason_codes: list[ReasonCode], level: int) -> None:
        """A SUBACK or UNSUBACK: log refusals, wake whoever waits on ``mid``."""
        for rc in reason_codes:
            if rc.is_failure:
                log.log(level, "broker %s refused %s (mid %d): %s", self.url, what, mid, rc)
        with self._lock:
            done = self._suback.pop(mid, None)
        if done is not None:
            done.set()

    def unsubscribe(self, topic_filter: str) -> None:
        """Forget every callback of ``topic_filter`` and unsubscribe it at the broker.

        From outside the network thread and connected, waits (up to
        ``connect_timeout_s``) for the UNSUBACK before the callbacks are dropped:
        what the broker sent before it stopped is still delivered.
        """
        with self._lock:
            known = any(f == topic_filter for f, _, _, _ in self._subs)
        if not known:
            return
        if self.connected:
            done = threading.Event()
            with self._lock:
                rc, mid = self._client.unsubscribe(topic_filter)
                if rc == paho.MQTT_ERR_SUCCESS and mid is not None:
                    self._suback[mid] = done
            if rc != paho.MQTT_ERR_SUCCESS:
                log.warning("unsubscribe from %s not sent: %s", topic_filter, paho.error_string(rc))
            elif threading.get_ident() != self._loop_ident and not done.wait(
                self.connect_timeout_s
            ):
                log.warning("no UNSUBACK for %s within %g s", topic_filter, self.connect_timeout_s)
        with self._lock:
            self._subs = [s for s in self._subs if s[0] != topic_filter]
            self._routes.clear()

    def forget(self, topic_filter: str) -> None:
        """Unsubscribe ``topic_filter`` at the broker though no callback of ours has it.

        A session that outlived a crash keeps the last run's subscriptions; a worker
        that no longer runs a store drops that store's with this. Does not wait.
        """
        with self._lock:
            if any(f == topic_filter for f, _, _, _ in self._subs):
                return  # in use by this run
        if self.connected:
            rc, _ = self._client.unsubscribe(topic_filter)
            if rc != paho.MQTT_ERR_SUCCESS:
                log.warning("unsubscribe from %s not sent: %s", topic_filter, paho.error_string(rc))

    def _on_unsubscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Any,
    ) -> None:
        self._acked("an unsubscribe", mid, reason_codes, logging.WARNING)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        topic = msg.topic
        data = bytes(msg.payload)
        if self.on_receive is not None and not self._written_ahead(msg, topic, data):
            return
        with self._lock:
            targets = self._targets(topic)
        for callback in targets:
            try:
                callback(topic, data)
            except Exception:  # a callback bug must not kill the network loop; logged loudly
                self.callback_errors += 1
                log.exception("callback for %s on %s failed", topic, self.client_id)

    def _written_ahead(self, msg: paho.MQTTMessage, topic: str, data: bytes) -> bool:
        """Run ``on_receive``; acknowledge the message only once it returned.

        If it raises (its store is down), the message is not acknowledged and the
        connection is cut: the broker sends it again after the reconnect (with a
        session that outlives the connection), and nothing is handed on meanwhile.
        """
        assert self.on_receive is not None
        try:
            self.on_receive(topic, data)
        except Exception:  # the hook's store failed: not safe, so not acknowledged
            self.receive_errors += 1
            log.exception(
                "%s could not write a message on %s ahead; not acknowledged, reconnecting",
                self.client_id,
                topic,
            )
            self.drop_connection()
            return False
        if msg.qos > 0:
            self._client.ack(msg.mid, msg.qos)
        return True

    def _targets(self, topic: str) -> list[RawCallback]:
        """The callbacks whose filters match ``topic`` (call with the lock held).

        Matching every filter costs about 0.5 us each, and a checkout worker holds
        a few hundred; a topic's answer is kept until the subscriptions change. The
        table is bounded: topics are chosen by whoever publishes.
        """
        found = self._routes.get(topic)
        if found is None:
            found = [cb for _, match, cb, _ in self._subs if topic_matches(match, topic)]
            if len(self._routes) >= _MAX_ROUTES:
                self._routes.clear()
            self._routes[topic] = found
        return found

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued QoS>0 message has been acknowledged; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self._client.want_write() and not getattr(self._client, "_out_messages", None):
                return True
            time.sleep(0.01)
        return False

    def close(self) -> None:
        """Publish a clean offline status (if any), disconnect and stop the network thread."""
        if self._closing:
            return
        info = self._publish_status("offline")
        if info is not None and self.connected:
            try:
                info.wait_for_publish(timeout=self.connect_timeout_s)
            except (RuntimeError, ValueError) as exc:
                log.warning("offline status for %s not confirmed: %s", self.client_id, exc)
        self._stop_loop()
        self._connected.clear()
        log.info("disconnected from %s as %s", self.url, self.client_id)

    def abort(self) -> None:
        """Die without an MQTT DISCONNECT, as a crash would: the broker publishes the Last Will.

        Stops the network thread, then closes the socket under it. For tests and
        fault drills; the transport cannot be used afterwards.
        """
        self._closing = True
        self._client.loop_stop()
        sock = self._client.socket()
        if sock is not None:
            sock.close()
        self._connected.clear()

    def drop_connection(self) -> None:
        """Cut the TCP connection (no DISCONNECT); the network thread reconnects with backoff."""
        sock = self._client.socket()
        if isinstance(sock, socket.socket):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError as exc:
                log.debug("shutdown of %s socket: %s", self.client_id, exc)
