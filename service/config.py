"""One settings object for the server (Settings) and one for the web pages (WebSettings).
Precedence: command-line flag > environment variable HASHGUARD_<NAME> > default. The
SETTINGS and WEB_SETTINGS tables feed `hashguard serve --help`, `hashguard web --help` and
the configuration tables in README.md (a test keeps them in step)."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

from service.domain import Role


@dataclass(frozen=True, slots=True)
class Rate:
    """`per_second` tokens are added each second, up to `burst`; 0 means no limit."""

    per_second: float
    burst: float


def parse_peer_rate(text: str) -> Rate:
    """`5:50` -> Rate(5, 50); `0` or `0:0` means no limit."""
    per_second, _, burst = text.partition(":")
    try:
        rate = Rate(float(per_second), float(burst or 0))
    except ValueError:
        raise ValueError(f"auth_failures_per_peer {text!r} is not PER_SECOND:BURST") from None
    if rate.per_second < 0 or (rate.per_second > 0 and rate.burst < 1):
        raise ValueError(f"auth_failures_per_peer {text!r}: rate must be >= 0 and burst >= 1")
    return rate


def parse_rate_limits(text: str) -> dict[Role, Rate]:
    """`operator=500:1000,submitter=2:20` -> {Role.OPERATOR: Rate(500, 1000), ...}.
    Roles left out are not limited."""
    rates: dict[Role, Rate] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        role_name, _, numbers = item.partition("=")
        per_second, _, burst = numbers.partition(":")
        try:
            role, rate = Role(role_name.strip()), Rate(float(per_second), float(burst))
        except ValueError:
            raise ValueError(
                f"rate_limits item {item!r} is not ROLE=PER_SECOND:BURST with ROLE one of "
                f"{', '.join(r.value for r in Role)}"
            ) from None
        if rate.per_second < 0 or (rate.per_second > 0 and rate.burst < 1):
            raise ValueError(f"rate_limits item {item!r}: rate must be >= 0 and burst >= 1")
        rates[role] = rate
    return rates


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    type: type
    default: object
    help: str

    @property
    def env(self) -> str:
        return "HASHGUARD_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: str = "./hashguard-data"
    store: str = "sqlite"
    pool_size: int = 8
    follow_interval: float = 0.5
    snapshot_interval: float = 300.0
    host: str = "127.0.0.1"
    port: int = 50051
    metrics_port: int = 9095
    pdq_threshold: int = 38
    phash_threshold: int = 0
    pdq_min_quality: int = 50
    crop_matching: int = 1
    region_matching: int = 1
    pdq_window_threshold: int = 38
    max_message_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 64_000_000
    max_hashes_per_case: int = 1000
    processes: int = 0
    workers: int = 16
    check_workers: int = 8
    check_workers_per_tenant: int = 4
    check_queue_seconds: float = 10.0
    max_streams: int = 256
    max_streams_per_tenant: int = 64
    stream_idle_seconds: float = 60.0
    reuse_port: int = 0
    event_loop: str = "uvloop"
    grace_seconds: float = 10.0
    key_cache_seconds: float = 1.0
    auth_failures_per_peer: str = "5:50"
    malloc_arena_max: int = 2
    malloc_trim_interval: float = 30.0
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    rate_limits: str = "operator=1000:2000,moderator=20:100,submitter=5:50,admin=50:200"
    max_cases_per_hour: int = 1000
    max_hashes_per_hour: int = 50_000
    max_stream_items: int = 1_000_000
    max_batch_items: int = 256
    decode_budget_mib: int = 2048
    max_video_bytes: int = 256 * 1024 * 1024
    max_video_seconds: float = 1800.0
    max_video_decode_seconds: float = 300.0
    vet_tenants: int = 1
    dispute_tenants: int = 2
    vet_partial_tenants: int = 2

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    def validate(self) -> Settings:
        """Refuse settings that would silently misbehave."""
        checks = [
            (0 <= self.pdq_threshold <= 256, "pdq_threshold must be 0..256"),
            (0 <= self.phash_threshold <= 64, "phash_threshold must be 0..64"),
            (0 <= self.pdq_min_quality <= 100, "pdq_min_quality must be 0..100"),
            (self.crop_matching in (0, 1), "crop_matching must be 0 or 1"),
            (self.region_matching in (0, 1), "region_matching must be 0 or 1"),
            (0 <= self.pdq_window_threshold <= 256, "pdq_window_threshold must be 0..256"),
            (0 <= self.port <= 65535, "port must be 0..65535"),
            (0 <= self.metrics_port <= 65535, "metrics_port must be 0..65535"),
            (self.max_message_bytes >= 1024, "max_message_bytes must be at least 1024"),
            (self.max_image_pixels >= 1, "max_image_pixels must be positive"),
            (self.max_hashes_per_case >= 1, "max_hashes_per_case must be positive"),
            (0 <= self.processes <= 256, "processes must be 0..256"),
            (self.workers >= 1, "workers must be at least 1"),
            (self.check_workers >= 1, "check_workers must be at least 1"),
            (self.check_workers_per_tenant >= 1, "check_workers_per_tenant must be at least 1"),
            (self.check_queue_seconds > 0, "check_queue_seconds must be positive"),
            (self.max_streams >= 1, "max_streams must be at least 1"),
            (self.max_streams_per_tenant >= 1, "max_streams_per_tenant must be at least 1"),
            (self.stream_idle_seconds > 0, "stream_idle_seconds must be positive"),
            (self.reuse_port in (0, 1), "reuse_port must be 0 or 1"),
            (self.event_loop in ("uvloop", "asyncio"), "event_loop must be uvloop or asyncio"),
            (self.grace_seconds >= 0, "grace_seconds must not be negative"),
            (0 <= self.key_cache_seconds <= 60, "key_cache_seconds must be 0..60"),
            (self.malloc_arena_max >= 0, "malloc_arena_max must not be negative"),
            (self.malloc_trim_interval >= 0, "malloc_trim_interval must not be negative"),
            (
                self.store == "sqlite" or self.store.startswith(("postgresql://", "postgres://")),
                "store must be 'sqlite' or a postgresql:// URL",
            ),
            (self.pool_size >= 1, "pool_size must be at least 1"),
            (0.01 <= self.follow_interval <= 60, "follow_interval must be 0.01..60 seconds"),
            (self.snapshot_interval >= 0, "snapshot_interval must not be negative"),
            (bool(self.tls_cert) == bool(self.tls_key), "tls_cert and tls_key go together"),
            (not self.tls_client_ca or bool(self.tls_cert), "tls_client_ca needs tls_cert"),
            (self.max_cases_per_hour >= 0, "max_cases_per_hour must not be negative"),
            (self.max_hashes_per_hour >= 0, "max_hashes_per_hour must not be negative"),
            (self.max_stream_items >= 1, "max_stream_items must be positive"),
            (self.max_batch_items >= 1, "max_batch_items must be positive"),
            (self.decode_budget_mib >= 0, "decode_budget_mib must not be negative"),
            (self.max_video_bytes >= 1024, "max_video_bytes must be at least 1024"),
            (self.max_video_seconds > 0, "max_video_seconds must be positive"),
            (self.max_video_decode_seconds > 0, "max_video_decode_seconds must be positive"),
            (self.vet_tenants >= 1, "vet_tenants must be at least 1"),
            (self.dispute_tenants >= 1, "dispute_tenants must be at least 1"),
            (self.vet_partial_tenants >= 1, "vet_partial_tenants must be at least 1"),
        ]
        problems = [message for ok, message in checks if not ok]
        try:
            parse_rate_limits(self.rate_limits)
            parse_peer_rate(self.auth_failures_per_peer)
        except ValueError as exc:
            problems.append(str(exc))
        if problems:
            raise ValueError("; ".join(problems))
        return self


_HELP = {
    "data_dir": "directory for the SQLite database and the index snapshot",
    "store": "`sqlite` (a file in the data directory) or a `postgresql://` URL shared by replicas",
    "pool_size": "most PostgreSQL connections one replica opens for calls",
    "follow_interval": "seconds between change-log catch-ups (PostgreSQL also wakes on NOTIFY)",
    "snapshot_interval": "seconds between index snapshots when the list changed (0: none)",
    "host": "address to listen on (0.0.0.0 for all interfaces)",
    "port": "gRPC port (0 picks a free one)",
    "metrics_port": "Prometheus /metrics port (0 picks a free one)",
    "pdq_threshold": "largest PDQ Hamming distance that matches (0-256)",
    "phash_threshold": "largest pHash Hamming distance that matches (0-64)",
    "pdq_min_quality": "PDQ hashes of lower quality are not matched (0-100)",
    "crop_matching": "1: also match the photo inside an upload's frame, and sub-window "
    "(pdq-window) entries, so crops and letterboxes match; 0: whole-picture hashes only",
    "region_matching": "1 (with crop_matching): also match each photo found inside an upload "
    "(collage tiles, a screenshot's photo) and an upload turned back by the small angle its "
    "corners show, as partial matches (REVIEW only); 0: not",
    "pdq_window_threshold": "largest PDQ distance to a sub-window (pdq-window) entry that matches",
    "max_message_bytes": "largest request (an image) in bytes",
    "max_image_pixels": "larger images are refused as decompression bombs",
    "max_hashes_per_case": "most hashes one case may submit",
    "processes": "serving processes sharing the gRPC port and one list in memory, each using "
    "about one core (0: one per core this process may use, a cgroup CPU limit included; "
    "1: one process, no supervisor)",
    "workers": "threads for store calls and key reads (hash checks run on the event loop)",
    "check_workers": "threads for image checks and batch searches, shared fairly between "
    "tenants (per-tenant queues served in turn)",
    "check_workers_per_tenant": "most check threads one tenant's calls may hold at once",
    "check_queue_seconds": "an image check or batch chunk waiting longer than this for a "
    "check thread is refused (RESOURCE_EXHAUSTED)",
    "max_streams": "most CheckUploads streams open at once (an idle one holds memory, no thread)",
    "max_streams_per_tenant": "most CheckUploads streams one tenant's keys may hold open at once",
    "stream_idle_seconds": "a CheckUploads stream that sends no upload for this long is closed "
    "(RESOURCE_EXHAUSTED); its answers stand",
    "reuse_port": "1: several serve processes share the gRPC port (SO_REUSEPORT)",
    "event_loop": "uvloop (libuv) or asyncio (the standard library's, also used where "
    "uvloop is not installed); docs/BENCHMARKS.md compares them",
    "grace_seconds": "on SIGTERM, how long in-flight calls may finish",
    "auth_failures_per_peer": "failed authentications one peer address may make, "
    "`PER_SECOND:BURST`; beyond, its calls with keys the cache cannot answer are refused "
    "(RESOURCE_EXHAUSTED) without a store read (0: no limit)",
    "key_cache_seconds": "how long an API key read from the store is trusted before it is read "
    "again; a revoked or rotated key stops working within this (0: read on every call)",
    "malloc_arena_max": "glibc malloc arenas (0: glibc's default, 8 per core); fewer keep "
    "memory flat",
    "malloc_trim_interval": "seconds between handing freed heap pages back to the kernel "
    "(0: never)",
    "tls_cert": "PEM certificate chain; with --tls-key the gRPC port serves TLS only",
    "tls_key": "PEM private key of --tls-cert",
    "tls_client_ca": "PEM CA bundle: require client certificates it signed (mutual TLS)",
    "rate_limits": "per-key token buckets, `ROLE=PER_SECOND:BURST,...`; roles left out "
    "(or rate 0) are not limited",
    "max_cases_per_hour": "most cases one submitter key may open per hour (0: no cap)",
    "max_hashes_per_hour": "most hashes one submitter key may submit per hour, over all its "
    "cases (0: no cap)",
    "max_stream_items": "most uploads one CheckUploads stream may carry; then open a new one",
    "max_batch_items": "most uploads one CheckUploadBatch call may carry (a larger batch is "
    "refused whole, INVALID_ARGUMENT)",
    "decode_budget_mib": "most memory, in MiB, all images and videos being decoded and hashed "
    "at once may hold, each reserving what its decoders will allocate (0: no budget)",
    "max_video_bytes": "largest video file in bytes (CheckVideo streams; CheckUpload's `video` "
    "is also bounded by max_message_bytes); held in memory while it is checked, within the "
    "decode budget",
    "max_video_seconds": "longest video, in seconds of playing time, that is checked",
    "max_video_decode_seconds": "most wall time one video's decoding and hashing may take",
    "vet_tenants": "distinct tenants whose moderators must confirm an entry before it blocks",
    "dispute_tenants": "distinct tenants rejecting an entry's hits that make it disputed",
    "vet_partial_tenants": "distinct tenants whose moderators must confirm an entry when "
    "some confirmations matched only a part of the upload (a strip); at least vet_tenants",
}
_TYPES = {"str": str, "int": int, "float": float}

SETTINGS: tuple[Setting, ...] = tuple(
    Setting(f.name, _TYPES[str(f.type)], f.default, _HELP[f.name]) for f in fields(Settings)
)


@dataclass(frozen=True, slots=True)
class WebSettings:
    """`hashguard web`: the pages for victims and moderators, a gRPC client of the service.
    The two secrets are read like every setting; prefer the environment for them."""

    # The web_tls_* settings mirror the client commands' --tls* flags (service/client/tls.py).

    web_host: str = "127.0.0.1"
    web_port: int = 8080
    web_target: str = "127.0.0.1:50051"
    web_submitter_key: str = ""
    web_session_secret: str = ""
    web_cookie_secure: int = 1
    web_content_url: str = ""
    web_cases_per_visitor_hour: int = 10
    web_case_reads_per_visitor_hour: int = 60
    web_client_ip_header: str = ""
    web_tls: int = 0
    web_tls_ca: str = ""
    web_tls_cert: str = ""
    web_tls_key: str = ""
    web_tls_server_name: str = ""

    def validate(self) -> WebSettings:
        checks = [
            (0 <= self.web_port <= 65535, "web_port must be 0..65535"),
            (self.web_cookie_secure in (0, 1), "web_cookie_secure must be 0 or 1"),
            (
                not self.web_content_url
                or (
                    self.web_content_url.startswith(("https://", "http://"))
                    and "{ref}" in self.web_content_url
                ),
                "web_content_url must be an http(s) URL containing {ref}",
            ),
            (
                not self.web_session_secret or len(self.web_session_secret) >= 32,
                "web_session_secret must be at least 32 characters",
            ),
            (self.web_tls in (0, 1), "web_tls must be 0 or 1"),
            (self.web_cases_per_visitor_hour >= 0, "web_cases_per_visitor_hour must be >= 0"),
            (
                self.web_case_reads_per_visitor_hour >= 0,
                "web_case_reads_per_visitor_hour must be >= 0",
            ),
            (
                bool(self.web_tls_cert) == bool(self.web_tls_key),
                "web_tls_cert and web_tls_key go together (the web tier's client certificate)",
            ),
        ]
        problems = [message for ok, message in checks if not ok]
        if problems:
            raise ValueError("; ".join(problems))
        return self


_WEB_HELP = {
    "web_host": "address the web pages listen on",
    "web_port": "HTTP port of the web pages (0 picks a free one)",
    "web_target": "HOST:PORT of the gRPC service the pages call",
    "web_submitter_key": "submitter API key the victim page submits with (empty: no submissions)",
    "web_session_secret": "secret that encrypts moderator sessions; set the same one on every "
    "web replica (empty: random, sessions end at restart)",
    "web_cookie_secure": "1: cookies travel over HTTPS only (browsers count localhost as "
    "HTTPS); 0: over plain HTTP too",
    "web_content_url": "link to the operator's content, `{ref}` replaced by the content "
    "reference (empty: no link)",
    "web_cases_per_visitor_hour": "cases one visitor (an IPv4 /24 or IPv6 /64) may submit per "
    "hour through the victim page (0: no cap); all visitors share the web tier's submitter "
    "key and its quota",
    "web_case_reads_per_visitor_hour": "case look-ups and withdrawals one visitor (an IPv4 "
    "/24 or IPv6 /64) may make per hour through the case page (0: no cap); each read is "
    "audited by the service",
    "web_client_ip_header": "header whose last address is the visitor's, set by your proxy "
    "(e.g. X-Forwarded-For); empty: the connection's address",
    "web_tls": "1: call the service over TLS, trusting the system's CAs (any other --web-tls-* "
    "setting turns TLS on too)",
    "web_tls_ca": "PEM CA that signed the service's certificate (the service's --tls-cert)",
    "web_tls_cert": "PEM client certificate of the web tier, for a service with --tls-client-ca",
    "web_tls_key": "PEM key of --web-tls-cert",
    "web_tls_server_name": "name to check the service's certificate against",
}

WEB_SETTINGS: tuple[Setting, ...] = tuple(
    Setting(f.name, _TYPES[str(f.type)], f.default, _WEB_HELP[f.name]) for f in fields(WebSettings)
)


def load_settings(overrides: dict[str, object], environ: dict[str, str] | None = None) -> Settings:
    """Build Settings from flags (`overrides`, None meaning unset), then env, then defaults."""
    return Settings(**_values(SETTINGS, overrides, environ)).validate()  # type: ignore[arg-type]


def load_web_settings(
    overrides: dict[str, object], environ: dict[str, str] | None = None
) -> WebSettings:
    """Build WebSettings like load_settings builds Settings."""
    return WebSettings(**_values(WEB_SETTINGS, overrides, environ)).validate()  # type: ignore[arg-type]


def _values(
    table: tuple[Setting, ...], overrides: dict[str, object], environ: dict[str, str] | None
) -> dict[str, object]:
    environ = dict(os.environ) if environ is None else environ
    values: dict[str, object] = {}
    for setting in table:
        flag_value = overrides.get(setting.name)
        if flag_value is not None:
            values[setting.name] = flag_value
        elif setting.env in environ:
            raw = environ[setting.env]
            try:
                values[setting.name] = setting.type(raw)
            except ValueError:
                raise ValueError(
                    f"{setting.env}={raw!r} is not a valid {setting.type.__name__}"
                ) from None
    return values
