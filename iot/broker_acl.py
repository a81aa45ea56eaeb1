"""Who may say what on a locked-down broker: one account per device and service, and its ACL.

On the shop floor a shelf controller or a reader can be opened and its
credentials read, so the broker must not trust a device further than its
own topics. Every device therefore logs in with its own account, and the ACL
lets it **write only its own exact topics** (no wildcards) and read only
what its job needs (a camera reads the evidence requests). Services (the
brain, store operations, device health, the edge adapters, the API) are
trusted further: they read with wildcards inside their store, publish their
own channels under any id of their kind, and publish derived device
channels (a shelf adapter's settled events, an RFID adapter's passages)
only for the devices the store file declares.

The rules come from the topic registry (``iot.topics.TOPICS``): a device of
kind ``shelf`` writes every channel of kind ``shelf`` under its own id,
except those a service derives from raw input (``DERIVED``), plus its
retained status; a service's reads and writes name registry channels, so a
renamed or new channel cannot be forgotten here without a test failing.

Account names are ``<store_id>-<id>``: the client ids the composition roots
already use, so with ``use_username_as_clientid`` one broker serves a chain
and a device can never take over another client's session.

>>> from pathlib import Path
>>> from iot.store import load_store
>>> store = load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml")
>>> shelf = accounts_for(store)["demo-shelf-g01"]
>>> shelf.writes
('smartstore/demo/shelf/shelf-g01/samples', 'smartstore/demo/shelf/shelf-g01/events', \
'smartstore/demo/shelf/shelf-g01/status')
>>> shelf.reads
()
>>> accounts_for(store)["demo-rfid-exit"].writes
('smartstore/demo/rfid/rfid-exit/raw', 'smartstore/demo/rfid/rfid-exit/status')
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from iot.store import Store
from iot.topics import ANY, TOPICS, Channel

__all__ = [
    "DEFAULT_SERVICES",
    "DERIVED",
    "DEVICE_KINDS",
    "DEVICE_READS",
    "SERVICE_ROLES",
    "Account",
    "ServiceRole",
    "accounts_for",
    "acl_text",
    "device_ids_by_kind",
    "password_line",
]

# Topic kinds a device publishes under (checkout.devices.DEVICE_KINDS says the same).
DEVICE_KINDS: tuple[str, ...] = ("shelf", "camera", "gate", "tracker", "rfid")

# Device-kind channels a service derives from a device's raw input; the device never writes them.
DERIVED = frozenset({"tag_passages", "shelf_faults"})

# What a device reads; every other device reads nothing.
DEVICE_READS: Mapping[str, tuple[str, ...]] = {"camera": ("evidence_requests",)}

# An id that is safe as a topic segment and in a Mosquitto password file (no ':', '/', '+', '#').
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_PBKDF2_ITERATIONS = 101  # what mosquitto_passwd 2.0 writes; passwords are random, not guessable
_SALT_BYTES = 12


@dataclass(frozen=True)
class ServiceRole:
    """What a kind of service reads and writes, by registry channel name."""

    kind: str  # kind segment of its status (and of its dead letters' topics)
    reads: tuple[str, ...]  # channels it subscribes to, anywhere in its store
    writes: tuple[str, ...]  # service channels (and dead letters) it publishes, under any id
    on_behalf: tuple[str, ...] = ()  # device channels it publishes for each declared device
    status_for: tuple[str, ...] = ()  # device kinds whose status it publishes (health, twin)
    description: str = ""


def _device_channels(kind: str) -> tuple[str, ...]:
    return tuple(c.name for c in TOPICS.values() if c.kind == kind and c.name not in DERIVED)


_EVERY_DEVICE_CHANNEL = tuple(n for k in DEVICE_KINDS for n in _device_channels(k))

SERVICE_ROLES: Mapping[str, ServiceRole] = {
    "brain": ServiceRole(
        "brain",
        reads=(
            "gate_entries",
            "gate_exits",
            "tracks",
            "shelf_events",
            "interactions",
            "status",
            "alerts",
        ),
        writes=("sessions", "cart_events", "shelf_outcomes", "receipts", "deadletter"),
        description="sessions, fusion and the cart ledger (a checkout worker)",
    ),
    "ops": ServiceRole(
        "ops",
        reads=(
            "shelf_events",
            "cart_events",
            "sessions",
            "shelf_outcomes",
            "receipts",
            "gate_entries",
            "gate_exits",
            "tracks",
            "rfid_raw",
            "tag_passages",
            "snapshots",
        ),
        writes=("alerts", "cases", "evidence_requests", "deadletter"),
        on_behalf=("tag_passages",),
        description="inventory, RFID gates, footfall and shrink cases",
    ),
    "health": ServiceRole(
        "ops",
        reads=(*_EVERY_DEVICE_CHANNEL, "shelf_faults", "status", "deadletter"),
        writes=("alerts", "deadletter"),
        description="device health: reads every device channel and status",
    ),
    "edge": ServiceRole(
        "shelf",
        reads=("shelf_samples", "rfid_raw", "interactions", "evidence_requests"),
        writes=("deadletter",),
        on_behalf=(
            "shelf_events",
            "shelf_faults",
            "tag_passages",  # `smartstore edge` runs the RFID adapter beside the readers
            "interactions",
            "snapshots",
            "tracks",
        ),
        status_for=("camera",),
        description="device adapters and camera pipelines beside the devices",
    ),
    "api": ServiceRole(
        "api",
        reads=(
            "cart_events",
            "sessions",
            "receipts",
            "alerts",
            "cases",
            "gate_entries",
            "gate_exits",
            "status",
        ),
        writes=("deadletter",),
        on_behalf=("gate_entries",),
        description="the HTTP API: gate scans in, the live feed out",
    ),
    "twin": ServiceRole(
        "sim",
        reads=("evidence_requests",),
        writes=(),
        on_behalf=_EVERY_DEVICE_CHANNEL,
        status_for=DEVICE_KINDS,
        description="the digital twin's simulated devices (demo and tests only, never a store)",
    ),
}

# The services the demo runs, by the service ids it connects with.
DEFAULT_SERVICES: Mapping[str, str] = {
    "brain": "brain",
    "ops": "ops",
    "devices": "health",
    "shelf-adapter": "edge",
    "api": "api",
}


@dataclass(frozen=True)
class Account:
    """One broker login: who it is and the topics it may read and write."""

    username: str
    role: str  # a device kind, or a key of SERVICE_ROLES
    kind: str  # the kind segment of its status topic
    client: str  # its device or service id
    store_id: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]

    @property
    def is_device(self) -> bool:
        return self.role in DEVICE_KINDS

    @property
    def status_topic(self) -> str:
        return TOPICS["status"].topic(self.store_id, self.client, self.kind)


def device_ids_by_kind(store: Store) -> dict[str, list[str]]:
    """Every declared device id, by the kind it publishes under."""
    d = store.devices
    return {
        "shelf": [c.id for c in d.shelf_controllers],
        "camera": [c.id for c in d.cameras],
        "gate": [g.id for g in store.floor.gates],
        "tracker": list(d.positioning),
        "rfid": [r.id for r in d.rfid_readers],
    }


def accounts_for(store: Store, services: Mapping[str, str] | None = None) -> dict[str, Account]:
    """One account per declared device and per service (``{service id: role}``).

    Raises ``ValueError`` naming the id when an id is unsafe as a topic segment or
    login name, when two devices or services share an id, or when a role is unknown.
    """
    sid = store.store_id
    by_kind = device_ids_by_kind(store)
    out: dict[str, Account] = {}
    owner: dict[str, str] = {}
    for kind, ids in by_kind.items():
        for device_id in ids:
            _claim(owner, device_id, f"{kind} device")
            writes = [_own(TOPICS[n], sid, device_id) for n in _device_channels(kind)]
            writes.append(TOPICS["status"].topic(sid, device_id, kind))
            reads = [_read_filter(TOPICS[n], sid) for n in DEVICE_READS.get(kind, ())]
            out[f"{sid}-{device_id}"] = Account(
                f"{sid}-{device_id}", kind, kind, device_id, sid, tuple(reads), tuple(writes)
            )
    for service_id, role_name in (DEFAULT_SERVICES if services is None else services).items():
        role = SERVICE_ROLES.get(role_name)
        if role is None:
            raise ValueError(
                f"service {service_id!r} has role {role_name!r}; known roles: "
                f"{', '.join(sorted(SERVICE_ROLES))}"
            )
        _claim(owner, service_id, f"{role_name} service")
        out[f"{sid}-{service_id}"] = _service_account(store, by_kind, service_id, role_name)
    return out


def _service_account(
    store: Store, by_kind: Mapping[str, list[str]], service_id: str, role_name: str
) -> Account:
    sid = store.store_id
    role = SERVICE_ROLES[role_name]
    reads = _unique(_read_filter(TOPICS[n], sid) for n in role.reads)
    writes = [TOPICS["status"].topic(sid, service_id, role.kind)]
    writes += [_read_filter(TOPICS[n], sid) for n in role.writes]
    for name in role.on_behalf:
        channel = TOPICS[name]
        writes += [_own(channel, sid, d) for d in by_kind[channel.kind]]
    for kind in role.status_for:
        writes += [TOPICS["status"].topic(sid, d, kind) for d in by_kind[kind]]
    return Account(
        f"{sid}-{service_id}",
        role_name,
        role.kind,
        service_id,
        sid,
        reads,
        _unique(writes),
    )


def _claim(owner: dict[str, str], ident: str, what: str) -> None:
    if not _SAFE_ID.match(ident):
        raise ValueError(
            f"{what} id {ident!r} cannot be a broker login or topic segment: use 1-128 of "
            "A-Z a-z 0-9 . _ - (no ':', '/', '+', '#' or spaces) in the store file"
        )
    if ident in owner:
        raise ValueError(
            f"{what} id {ident!r} is also the id of a {owner[ident]}; each device and service "
            "needs its own id (its own broker account); rename one"
        )
    owner[ident] = what


def _own(channel: Channel, store_id: str, device_id: str) -> str:
    return channel.topic(store_id, device_id)


def _read_filter(channel: Channel, store_id: str) -> str:
    return channel.filter(store_id, kind=ANY if channel.kind == ANY else None)


def _unique(topics: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(topics))


def acl_text(accounts: Mapping[str, Account], *, source: str = "") -> str:
    """The Mosquitto ``acl_file``: a ``user`` block per account; nothing for anonymous clients."""
    lines = [
        "# Mosquitto ACL written by `smartstore broker-config`"
        + (f" from {source}" if source else "")
        + "; regenerate it, do not edit it.",
        "# No line before the first `user`: anonymous clients (refused anyway) may do nothing.",
        "# Devices write only their own exact topics; services read and write inside their store.",
    ]
    for account in accounts.values():
        lines += ["", f"# {account.role}: {account.client}", f"user {account.username}"]
        lines += [f"topic read {t}" for t in account.reads]
        lines += [f"topic write {t}" for t in account.writes]
    return "\n".join(lines) + "\n"


def password_line(username: str, password: str, *, salt: bytes | None = None) -> str:
    """One ``password_file`` line in Mosquitto 2's PBKDF2-SHA512 form (``$7$``).

    >>> password_line("ann", "hunter2", salt=bytes(12))
    'ann:$7$101$AAAAAAAAAAAAAAAA$is7q7Fh8Mlaj5BULv5VBKJ1Kt5ZBEPLjEqjK96fozkAdGpR7u9do1I8BVvBmzb4V\
HPQ3e+EFuHGY/Oqscty/nQ=='
    """
    if ":" in username or "\n" in username or not username:
        raise ValueError(f"login name {username!r} must be non-empty, without ':' or newlines")
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _PBKDF2_ITERATIONS)
    b64 = base64.b64encode
    return f"{username}:$7${_PBKDF2_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"
