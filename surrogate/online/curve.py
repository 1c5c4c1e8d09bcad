"""CURVE keys for a stream server reachable beyond this machine (ZeroMQ's CurveZMQ, pyzmq's
`zmq.auth`): the traffic is encrypted, clients check the server's key, and the server takes
only clients whose public key is in its folder.

    KEYS/server.key, server.key_secret           the server's pair (the secret stays here)
    KEYS/clients/client.key, client.key_secret   the pair the launcher hands its solvers
    KEYS/clients/*.key                           every client public key the server accepts

`load_or_create(KEYS)` makes what is missing (secret files readable by their owner only).
Solvers get their keys in the environment: SURROGATE_CURVE_SERVER (the server's public key),
SURROGATE_CURVE_PUBLIC and SURROGATE_CURVE_SECRET (the client's pair), Z85 text; the Python
and C clients read them. A solver started by the user's own job needs the same three.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth

from surrogate.errors import InputError

LOOPBACK = ("127.0.0.1", "localhost", "::1")
ENV = ("SURROGATE_CURVE_SERVER", "SURROGATE_CURVE_PUBLIC", "SURROGATE_CURVE_SECRET")


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


@dataclass(frozen=True)
class ClientKeys:
    """What a client needs: the server's public key and its own pair (Z85 bytes)."""

    server: bytes
    public: bytes
    secret: bytes

    def env(self) -> dict[str, str]:
        return dict(zip(ENV, (self.server.decode(), self.public.decode(), self.secret.decode())))

    @classmethod
    def from_env(cls) -> ClientKeys | None:
        """The keys of SURROGATE_CURVE_*, or None when unset."""
        values = [os.environ.get(k, "") for k in ENV]
        if not any(values):
            return None
        if not all(len(v) == 40 for v in values):
            raise InputError(f"{', '.join(ENV)}: set all three to 40-character Z85 keys")
        return cls(*(v.encode() for v in values))

    def apply(self, sock: zmq.Socket) -> None:  # type: ignore[type-arg]
        sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = self.server, self.public, self.secret


@dataclass(frozen=True)
class ServerKeys:
    public: bytes
    secret: bytes
    clients: Path  # the folder of accepted client public keys
    client: ClientKeys  # the pair handed to launched solvers

    def apply(self, sock: zmq.Socket) -> None:  # type: ignore[type-arg]
        sock.curve_server, sock.curve_publickey, sock.curve_secretkey = True, self.public, self.secret


def _pair(folder: Path, name: str) -> tuple[bytes, bytes]:
    secret_file = folder / f"{name}.key_secret"
    if not secret_file.is_file():
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        zmq.auth.create_certificates(folder, name)
        os.chmod(secret_file, 0o600)
    public, secret = zmq.auth.load_certificate(secret_file)
    if secret is None:
        raise InputError(f"{secret_file}: holds no secret key")
    return public, secret


def load_or_create(folder: str | Path) -> ServerKeys:
    """The server's keys in `folder`, and a client pair under `folder/clients`, made when missing."""
    if not zmq.has("curve"):
        raise InputError("this libzmq has no CURVE support: a stream server beyond 127.0.0.1 needs it (Debian's libzmq5 has it)")
    root = Path(folder)
    try:
        public, secret = _pair(root, "server")
        client_public, client_secret = _pair(root / "clients", "client")
    except (OSError, ValueError) as e:
        raise InputError(f"stream.curve_keys {root}: {e}") from None
    return ServerKeys(public, secret, root / "clients", ClientKeys(public, client_public, client_secret))
