"""``EmbeddedBroker``: an MQTT broker inside the process (amqtt), for one-machine runs.

The broker runs on its own asyncio loop in a background thread, so the rest
of the program stays synchronous. ``port=0`` lets the OS pick a free port;
``url`` says which one was taken. amqtt's own loggers are turned down to
WARNING because they log every packet at INFO.

>>> from iot.mqtt import MqttTransport
>>> with EmbeddedBroker() as broker:
...     transport = MqttTransport(broker.url, "doctest-client")
...     transport.connected
...     transport.close()
True
"""

from __future__ import annotations

import asyncio
import logging
import threading
from types import TracebackType
from typing import Any

__all__ = ["EmbeddedBroker"]

log = logging.getLogger(__name__)

_NOISY_LOGGERS = ("amqtt", "transitions", "websockets")


def _quiet_amqtt() -> None:
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


class EmbeddedBroker:
    """An amqtt broker on ``host:port`` in a background thread; a context manager."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, start_timeout_s: float = 10.0
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0 (any free port) or 1..65535, got {port!r}")
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self.start_timeout_s = start_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the embedded broker is not started; call start() first")
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> EmbeddedBroker:
        """Start the broker and block until it accepts connections."""
        if self._thread is not None:
            return self
        _quiet_amqtt()
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="embedded-mqtt-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(self.start_timeout_s):
            self.stop()
            raise RuntimeError(
                f"embedded MQTT broker on {self.host}:{self.requested_port} did not start within "
                f"{self.start_timeout_s:g} s; check that the port is free or pass a real "
                "broker URL"
            )
        if self._error is not None:
            err = self._error
            self._thread.join(timeout=self.start_timeout_s)
            self._thread = None
            raise RuntimeError(
                f"embedded MQTT broker could not listen on {self.host}:{self.requested_port}: "
                f"{err}; pick another port (0 = any free one) or stop what is using it"
            ) from err
        log.info("embedded MQTT broker listening on %s", self.url)
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._start_broker())
        except Exception as exc:  # reported to start(), which raises it with context
            self._error = exc
            self._ready.set()
            loop.close()
            return
        # Broker.start() awaited asyncio.start_server, so the socket already listens.
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._shutdown_broker())
            loop.close()

    async def _start_broker(self) -> None:
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.requested_port}"}},
            # Only anonymous auth: no $SYS publisher, no packet logger.
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }
        self._broker = Broker(config)
        await self._broker.start()
        self.port = self._bound_port()

    def _bound_port(self) -> int:
        # amqtt does not expose the bound port; with port 0 only the server socket knows it.
        for server in getattr(self._broker, "_servers", {}).values():
            for sock in getattr(server.instance, "sockets", None) or []:
                return int(sock.getsockname()[1])
        if self.requested_port:
            return self.requested_port
        raise RuntimeError("amqtt started but no listening socket was found")

    async def _shutdown_broker(self) -> None:
        if self._broker is None:
            return
        try:
            await self._broker.shutdown()
        except Exception:  # shutdown problems must not hide the caller's own exception
            log.exception("embedded MQTT broker did not shut down cleanly")
        self._broker = None

    def stop(self) -> None:
        """Stop the broker and its thread (idempotent)."""
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=self.start_timeout_s)
        if thread.is_alive():
            log.warning(
                "embedded MQTT broker thread did not stop within %g s", self.start_timeout_s
            )
        self._thread = None
        self._loop = None
        self.port = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
