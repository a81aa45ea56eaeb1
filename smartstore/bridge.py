"""``smartstore bridge-config``: a Mosquitto bridge from a store's broker to the central one.

In a chain every store keeps its own broker: the devices and the edge nodes
talk to it over the shop's network, and it keeps working when the link to
the centre does not. A Mosquitto *bridge* forwards the store's **events**
to the central broker where the checkout workers run, and brings back what
is decided there. Raw inputs (load-cell samples, RFID readers' own reads)
never leave the store: the edge turns them into events first, so the link
carries a few kB/s per store instead of hundreds.

Which topics cross is derived from the topic registry, never hand-written:

- **out**: every channel of a device kind (``iot.broker_acl.DEVICE_KINDS``)
  except ``LOCAL_ONLY``, and the statuses and dead letters of those kinds;
- **in**: every channel of a service kind (the brain's sessions, cart
  lines, outcomes and receipts; store operations' alerts, cases and evidence
  requests) and their statuses.

>>> from pathlib import Path
>>> from iot.store import load_store
>>> store = load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml")
>>> lines = bridge_topics(store.store_id)
>>> "topic smartstore/demo/shelf/+/events out 1" in lines
True
>>> any("samples" in line or "/raw" in line for line in lines)
False
>>> "topic smartstore/demo/brain/+/receipts in 1" in lines
True
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from iot.broker_acl import DEVICE_KINDS
from iot.mqtt_url import parse_broker
from iot.store import Store
from iot.topics import ANY, PREFIX, TOPICS

__all__ = ["LOCAL_ONLY", "TEMPLATE", "bridge_text", "bridge_topics", "write_bridge_config"]

TEMPLATE = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto" / "bridge.conf"
# Raw device input: stays on the store's broker, where the edge adapters read it.
LOCAL_ONLY = frozenset({"shelf_samples", "rfid_raw"})
_FIELD = re.compile(r"\{\{(\w+)\}\}")
_TEMPLATE_NOTE = re.compile(r"# template:begin\n.*?# template:end\n", re.DOTALL)
_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


def bridge_topics(store_id: str, *, inbound: bool = True) -> list[str]:
    """The bridge's ``topic`` lines for one store (out: events; in: central decisions)."""
    out: list[str] = []
    inward: list[str] = []
    every_kind = [c for c in TOPICS.values() if c.kind == ANY]
    service_kinds = sorted({c.kind for c in TOPICS.values() if c.kind not in (*DEVICE_KINDS, ANY)})
    for c in TOPICS.values():
        if c.name in LOCAL_ONLY or c.kind == ANY:
            continue
        topic = f"topic {PREFIX}/{store_id}/{c.kind}/+/{c.channel}"
        if c.kind in DEVICE_KINDS:
            out.append(f"{topic} out {c.qos}")
        else:
            inward.append(f"{topic} in {c.qos}")
    for c in every_kind:  # statuses and dead letters: with the kind that publishes them
        for kind in DEVICE_KINDS:
            out.append(f"topic {PREFIX}/{store_id}/{kind}/+/{c.channel} out {c.qos}")
        if c.retain:  # a central service's status comes back; its dead letters stay central
            inward += [
                f"topic {PREFIX}/{store_id}/{k}/+/{c.channel} in {c.qos}" for k in service_kinds
            ]
    return out + (inward if inbound else [])


def bridge_text(
    store: Store,
    *,
    central_url: str,
    name: str | None = None,
    inbound: bool = True,
    template: str | Path = TEMPLATE,
) -> str:
    """The filled bridge configuration (it may hold the central login: keep it private)."""
    sid = store.store_id
    name = name or f"{sid}-central"
    if not _SAFE.match(name):
        raise ValueError(f"bridge name {name!r}: use 1-100 of A-Z a-z 0-9 . _ -")
    address = parse_broker(central_url)
    if address.accounts_file is not None:
        raise ValueError(
            f"--central {address.redacted}: give the bridge's own login in the URL "
            "(mqtts://USER:PASSWORD@HOST:8883?ca=CA), not accounts="
        )
    login = ""
    if address.username is not None:
        login = f"remote_username {address.username}\nremote_password {address.password}"
    tls = ""
    if address.tls:
        tls = "bridge_tls_version tlsv1.2\n" + (
            f"bridge_cafile {Path(address.ca_file).resolve()}"
            if address.ca_file
            else "bridge_capath /etc/ssl/certs"
        )
    values = {
        "name": name,
        "address": f"{address.host}:{address.port}",
        "remote_clientid": address.username or f"{sid}-bridge",
        "local_clientid": f"{name}-local",
        "login": login,
        "tls": tls,
        "topics": "\n".join(bridge_topics(sid, inbound=inbound)),
    }
    text = _TEMPLATE_NOTE.sub(
        "# Written by `smartstore bridge-config`; regenerate it rather than edit it.\n",
        Path(template).read_text(encoding="utf-8"),
    )
    unknown = sorted(set(_FIELD.findall(text)) - set(values))
    if unknown:
        raise ValueError(f"bridge template {template} has unknown field(s) {', '.join(unknown)}")
    filled = _FIELD.sub(lambda m: values[m.group(1)], text)
    return re.sub(r"\n{3,}", "\n\n", filled)


def write_bridge_config(
    store: Store,
    out: str | Path,
    *,
    central_url: str,
    name: str | None = None,
    inbound: bool = True,
) -> Path:
    """Write ``bridge_text`` to ``out``, readable by its owner only (it may hold a password)."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = bridge_text(store, central_url=central_url, name=name, inbound=inbound)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return path
