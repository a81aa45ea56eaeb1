"""``smartstore broker-config``: a locked-down Mosquitto for one store, written to a folder.

From the store file it writes, into ``OUT_DIR``:

- ``mosquitto.conf``: ``deploy/mosquitto/mosquitto.conf`` with its fields
  filled (a TLS listener, a loopback listener, no anonymous clients);
- ``acl``: one ``user`` block per device and service (``iot.broker_acl``);
- ``passwd``: a fresh random password per account, hashed the way Mosquitto
  2 reads them (PBKDF2-SHA512, ``$7$``), owner-readable only;
- ``credentials.json``: every account's login, for the operator who
  provisions the devices (owner-readable only), and ``accounts/<login>.json``,
  one file per account: a device is given its own file and never sees
  another device's password;
- ``ca.crt``/``ca.key`` (a **test** CA, unless ``--ca``/``--ca-key`` name a
  real one) and ``server.crt``/``server.key`` for the host names given.

The test CA is for development and tests only: a store's broker gets its
server certificate from the chain's real CA (``--ca``/``--ca-key``, or replace
``server.crt``/``server.key`` with one it issued).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from iot.broker_acl import (
    DEFAULT_SERVICES,
    SERVICE_ROLES,
    Account,
    accounts_for,
    acl_text,
    password_line,
)
from iot.store import load_store

__all__ = [
    "TEMPLATE",
    "BrokerFiles",
    "add_parser",
    "parse_service",
    "render_conf",
    "run",
    "write_broker_config",
]

TEMPLATE = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto" / "mosquitto.conf"
_FIELD = re.compile(r"\{\{(\w+)\}\}")
_LOCAL_BLOCK = re.compile(r"# local-listener:begin\n.*?# local-listener:end\n", re.DOTALL)
_TEMPLATE_NOTE = re.compile(r"# template:begin\n.*?# template:end\n", re.DOTALL)
_WRITTEN_NOTE = (
    "# Written by `smartstore broker-config` from deploy/mosquitto/mosquitto.conf;\n"
    "# regenerate it rather than edit it.\n"
)
_CERT_DAYS = 365
_OWNER_ONLY = 0o600


@dataclass(frozen=True)
class BrokerFiles:
    """What ``write_broker_config`` wrote, and the accounts it made."""

    out_dir: Path
    conf: Path
    acl: Path
    passwd: Path
    credentials: Path
    ca_cert: Path
    server_cert: Path
    server_key: Path
    accounts: dict[str, Account]
    tls_port: int
    local_port: int

    def login(self, username: str) -> tuple[str, str]:
        """``(username, password)`` of one account, read back from ``credentials.json``."""
        data = json.loads(self.credentials.read_text())
        return username, data["accounts"][username]["password"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``broker-config`` subcommand's options."""
    b = sub.add_parser(
        "broker-config",
        help="write a locked-down Mosquitto configuration for a store: accounts, ACL, TLS",
    )
    b.add_argument("store", help="store file, e.g. stores/demo.yaml")
    b.add_argument("out_dir", help="folder to write mosquitto.conf, acl, passwd, credentials into")
    b.add_argument(
        "--service",
        action="append",
        default=[],
        metavar="ID=ROLE",
        help="add a service account (roles: "
        + ", ".join(sorted(SERVICE_ROLES))
        + "), e.g. worker-2=brain; repeatable. The demo's services are always included "
        "unless --no-default-services",
    )
    b.add_argument(
        "--no-default-services",
        action="store_true",
        help="leave out the demo's services ("
        + ", ".join(f"{k}={v}" for k, v in DEFAULT_SERVICES.items())
        + ")",
    )
    b.add_argument(
        "--twin",
        action="store_true",
        help="add the twin=twin account that publishes as every simulated device "
        "(demo and tests only; never on a store's broker)",
    )
    b.add_argument("--ca", default=None, help="sign the server certificate with this CA (PEM)")
    b.add_argument("--ca-key", default=None, help="the --ca certificate's private key (PEM)")
    b.add_argument(
        "--host",
        action="append",
        default=None,
        help="a name or IP address clients reach the broker by; repeatable "
        "(default: localhost and 127.0.0.1)",
    )
    b.add_argument("--tls-port", type=int, default=8883, help="TLS listener port (default 8883)")
    b.add_argument("--tls-bind", default=None, help="address the TLS listener binds (default: all)")
    b.add_argument(
        "--local-port",
        type=int,
        default=1883,
        help="plain loopback listener port, logins still required (default 1883; 0: none)",
    )
    b.add_argument(
        "--run-as",
        default="mosquitto",
        help="user Mosquitto drops to when started as root; it must be able to read OUT_DIR "
        "(default mosquitto)",
    )
    b.add_argument("--force", action="store_true", help="replace an earlier configuration")


def run(args: argparse.Namespace) -> int:
    """``smartstore broker-config``: write the files and say how to start and reach the broker."""
    services = {} if args.no_default_services else dict(DEFAULT_SERVICES)
    services.update(parse_service(s) for s in args.service)
    if args.twin:
        services["twin"] = "twin"
    files = write_broker_config(
        args.store,
        args.out_dir,
        services=services,
        ca_cert=args.ca,
        ca_key=args.ca_key,
        hosts=args.host or ("localhost", "127.0.0.1"),
        tls_port=args.tls_port,
        tls_bind=args.tls_bind,
        local_port=args.local_port,
        run_as=args.run_as,
        force=args.force,
    )
    devices = sum(a.is_device for a in files.accounts.values())
    host = (args.host or ["localhost"])[0]
    print(f"{files.out_dir}: {devices} device and {len(files.accounts) - devices} service accounts")
    print(f"  start:   mosquitto -c {files.conf}")
    print(f"  connect: mqtts://LOGIN:PASSWORD@{host}:{files.tls_port}?ca={files.ca_cert}")
    print(
        f"  or:      mqtts://{host}:{files.tls_port}?ca={files.ca_cert}&accounts={files.credentials}"
    )
    print(f"  give each device only its own file under {files.out_dir / 'accounts'}")
    if args.ca is None:
        print("  the CA is a TEST CA: use --ca/--ca-key with the chain's real CA for a store")
    return 0


def parse_service(text: str) -> tuple[str, str]:
    """``ID=ROLE`` (a ``--service`` option) → ``(id, role)``."""
    service_id, sep, role = text.partition("=")
    if not sep or not service_id or not role:
        raise ValueError(f"--service {text!r}: write ID=ROLE, e.g. worker-2=brain")
    return service_id.strip(), role.strip()


def render_conf(
    template: str,
    *,
    config_dir: Path,
    tls_port: int,
    tls_bind: str | None,
    local_port: int,
    run_as: str = "mosquitto",
) -> str:
    """The template with its ``{{fields}}`` filled; ``local_port`` 0 drops the loopback listener."""
    template = _TEMPLATE_NOTE.sub(_WRITTEN_NOTE, template)
    if local_port == 0:
        template = _LOCAL_BLOCK.sub("", template)
    values = {
        "config_dir": str(config_dir),
        "tls_listener": f"{tls_port} {tls_bind}" if tls_bind else str(tls_port),
        "local_port": str(local_port),
        "run_as": run_as,
    }
    unknown = sorted(set(_FIELD.findall(template)) - set(values))
    if unknown:
        raise ValueError(f"Mosquitto template has unknown field(s) {', '.join(unknown)}")
    return _FIELD.sub(lambda m: values[m.group(1)], template)


def write_broker_config(
    store_path: str | Path,
    out_dir: str | Path,
    *,
    services: Mapping[str, str] | None = None,
    ca_cert: str | Path | None = None,
    ca_key: str | Path | None = None,
    hosts: Sequence[str] = ("localhost", "127.0.0.1"),
    tls_port: int = 8883,
    tls_bind: str | None = None,
    local_port: int = 1883,
    template: str | Path = TEMPLATE,
    run_as: str = "mosquitto",
    force: bool = False,
) -> BrokerFiles:
    """Write a locked-down Mosquitto configuration for the store into ``out_dir``.

    ``services``: ``{service id: role}`` (default ``iot.broker_acl.DEFAULT_SERVICES``).
    ``ca_cert``/``ca_key``: sign the server certificate with this CA (else a fresh test CA).
    ``run_as``: the user Mosquitto drops to when started as root (it must read ``out_dir``).
    ``hosts``: the names (and IP addresses) clients reach the broker by; the server
    certificate names them all, and clients check the one they dialled.
    Refuses to overwrite an earlier configuration unless ``force``: new passwords would
    lock out every device provisioned with the old ones.
    """
    _check_ports(tls_port, local_port)
    if (ca_cert is None) != (ca_key is None):
        raise ValueError("give --ca and --ca-key together (the CA's certificate and its key)")
    if not hosts:
        raise ValueError("give at least one --host the broker is reached by")
    san = _san(hosts)
    store = load_store(store_path)
    accounts = accounts_for(store, DEFAULT_SERVICES if services is None else services)
    out = Path(out_dir).resolve()
    if (out / "passwd").exists() and not force:
        raise ValueError(
            f"{out} already holds a broker configuration; pass --force to replace it (every "
            "device then needs its new credentials) or choose another folder"
        )
    text = Path(template).read_text()
    (out / "data").mkdir(parents=True, exist_ok=True)
    (out / "accounts").mkdir(exist_ok=True)
    os.chmod(out, 0o700)
    os.chmod(out / "accounts", 0o700)

    passwords = {name: secrets.token_urlsafe(24) for name in accounts}
    _write(out / "acl", acl_text(accounts, source=str(store_path)), 0o644)
    _write(
        out / "passwd",
        "".join(password_line(n, p) + "\n" for n, p in passwords.items()),
        _OWNER_ONLY,
    )
    ca_file = out / "ca.crt"
    _certificates(out, store.store_id, hosts, san, (ca_cert, ca_key))
    _write_credentials(
        out,
        accounts=accounts,
        passwords=passwords,
        ca_file=ca_file,
        host=hosts[0],
        tls_port=tls_port,
        local_port=local_port,
    )
    conf = out / "mosquitto.conf"
    _write(
        conf,
        render_conf(
            text,
            config_dir=out,
            tls_port=tls_port,
            tls_bind=tls_bind,
            local_port=local_port,
            run_as=run_as,
        ),
        0o644,
    )
    return BrokerFiles(
        out_dir=out,
        conf=conf,
        acl=out / "acl",
        passwd=out / "passwd",
        credentials=out / "credentials.json",
        ca_cert=ca_file,
        server_cert=out / "server.crt",
        server_key=out / "server.key",
        accounts=accounts,
        tls_port=tls_port,
        local_port=local_port,
    )


def _check_ports(tls_port: int, local_port: int) -> None:
    if not 1 <= tls_port <= 65535:
        raise ValueError(f"--tls-port {tls_port}: must be 1..65535 (8883 is usual)")
    if not 0 <= local_port <= 65535 or local_port == tls_port:
        raise ValueError(
            f"--local-port {local_port}: must be 0 (none) or 1..65535 and not the TLS port"
        )


def _write(path: Path, text: str, mode: int) -> None:
    """Write ``text`` to ``path`` created with ``mode`` (never briefly readable by others)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def _write_credentials(
    out: Path,
    *,
    accounts: Mapping[str, Account],
    passwords: Mapping[str, str],
    ca_file: Path,
    host: str,
    tls_port: int,
    local_port: int,
) -> None:
    tls_url = f"mqtts://{host}:{tls_port}?ca={ca_file}"
    entries = {}
    for name, account in accounts.items():
        entry = {
            "password": passwords[name],
            "role": account.role,
            "kind": account.kind,
            "id": account.client,
            "status_topic": account.status_topic,
        }
        entries[name] = entry
        own = {"username": name, **entry, "store_id": account.store_id, "broker": tls_url}
        _write(out / "accounts" / f"{name}.json", json.dumps(own, indent=1) + "\n", _OWNER_ONLY)
    everything = {
        "store_id": next(iter(accounts.values())).store_id,
        "broker": tls_url,
        "local_broker": f"mqtt://127.0.0.1:{local_port}" if local_port else None,
        "ca_file": str(ca_file),
        "accounts": entries,
    }
    _write(out / "credentials.json", json.dumps(everything, indent=1) + "\n", _OWNER_ONLY)


# --- certificates (openssl) ---

_OPENSSL_CONF = """[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
subjectAltName = {san}
"""
_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _certificates(
    out: Path,
    store_id: str,
    hosts: Sequence[str],
    san: str,
    ca: tuple[str | Path | None, str | Path | None],
) -> None:
    """``ca.crt`` (and, for a test CA, ``ca.key``), ``server.crt`` and ``server.key``."""
    ca_cert, ca_key = ca
    openssl = shutil.which("openssl")
    if openssl is None:
        raise OSError("openssl is not installed; install it (apt-get install openssl)")
    with tempfile.TemporaryDirectory(prefix="smartstore-certs-") as tmp_dir:
        tmp = Path(tmp_dir)
        cnf = tmp / "openssl.cnf"
        cnf.write_text(_OPENSSL_CONF.format(san=san))
        if ca_cert is None or ca_key is None:
            ca_key_path = out / "ca.key"
            ca_key_path.unlink(missing_ok=True)
            _run(
                [
                    *(openssl, "req", "-x509", "-config", str(cnf), "-extensions", "ca_ext"),
                    *_EC,
                    *("-keyout", str(ca_key_path), "-out", str(out / "ca.crt")),
                    *("-days", str(_CERT_DAYS), "-subj", f"/CN=smartstore TEST CA {store_id}"),
                ]
            )
            os.chmod(ca_key_path, _OWNER_ONLY)
        else:
            ca_key_path = Path(ca_key)  # the real CA's key stays where it is
            (out / "ca.key").unlink(missing_ok=True)  # a test CA's, from an earlier run
            shutil.copyfile(ca_cert, out / "ca.crt")
        key = out / "server.key"
        key.unlink(missing_ok=True)
        csr = tmp / "server.csr"
        _run(
            [
                *(openssl, "req", "-new", "-config", str(cnf)),
                *_EC,
                *("-keyout", str(key), "-out", str(csr), "-subj", f"/CN={hosts[0]}"),
            ]
        )
        os.chmod(key, _OWNER_ONLY)
        _run(
            [
                *(openssl, "x509", "-req", "-in", str(csr), "-CA", str(out / "ca.crt")),
                *("-CAkey", str(ca_key_path), "-set_serial", f"0x{secrets.token_hex(16)}"),
                *("-days", str(_CERT_DAYS), "-extfile", str(cnf), "-extensions", "server_ext"),
                *("-out", str(out / "server.crt")),
            ]
        )


def _san(hosts: Sequence[str]) -> str:
    names = []
    for host in hosts:
        try:
            names.append(f"IP:{ipaddress.ip_address(host)}")
        except ValueError:
            if not re.fullmatch(r"[A-Za-z0-9*]([A-Za-z0-9.-]*[A-Za-z0-9])?", host):
                raise ValueError(
                    f"--host {host!r} is neither a DNS name nor an IP address"
                ) from None
            names.append(f"DNS:{host}")
    return ", ".join(names)


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise OSError(
            f"{' '.join(cmd[:3])} ... failed (exit {done.returncode}): {done.stderr.strip()[-800:]}"
        )
