"""The legacy server's parameters and counters."""
from __future__ import annotations

from dataclasses import dataclass, field

from biosig_ros.errors import ConfigError


@dataclass
class ServerSettings:
    """Where and how the legacy server listens."""

    bind_address: str = field(default="127.0.0.1", metadata={
        "doc": "address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface)"})
    port: int = field(default=50000, metadata={
        "doc": "TCP port (biosiglive's default 50000; 0 picks a free port)", "range": (0, 65535)})
    max_request_bytes: int = field(default=8192, metadata={
        "doc": "largest request accepted (a biosiglive Message pickles to about 100 bytes)",
        "range": (64, 1 << 20)})
    request_timeout: float = field(default=2.0, metadata={
        "doc": "seconds a client has to send its whole request after connecting",
        "range": (0.001, 3600.0)})
    reply_timeout: float = field(default=5.0, metadata={
        "doc": "seconds a client has to read its whole reply", "range": (0.001, 3600.0)})
    max_connections: int = field(default=128, metadata={
        "doc": "open connections at once; at the cap a new client evicts the oldest one still "
               "waiting for its request", "range": (1, 4096)})
    max_connections_per_peer: int = field(default=32, metadata={
        "doc": "open connections per peer address; beyond, that peer's oldest connection still "
               "waiting for its request is evicted", "range": (1, 4096)})

    def __post_init__(self):
        if not self.bind_address:
            raise ConfigError("parameter 'bind_address' must not be empty")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"parameter 'port' must be in 0..65535, got {self.port}")
        if self.max_request_bytes < 64:
            raise ConfigError("parameter 'max_request_bytes' must be >= 64, "
                              f"got {self.max_request_bytes}")
        for name in ("request_timeout", "reply_timeout"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"parameter '{name}' must be > 0, got {getattr(self, name)}")
        for name in ("max_connections", "max_connections_per_peer"):
            if getattr(self, name) < 1:
                raise ConfigError(f"parameter '{name}' must be >= 1, got {getattr(self, name)}")


@dataclass
class ServerStats:
    """Counters, read by the node's diagnostics (plain ints: updated by one thread)."""

    connections: int = 0
    replies: int = 0
    error_replies: int = 0
    timeouts: int = 0
    dropped: int = 0          # closed by the client before its reply was sent
    paused: int = 0           # times accepting paused (every connection busy writing)
    evicted: int = 0          # idle connections closed to make room for a new client
    open_connections: int = 0
    last_error: str = ""
