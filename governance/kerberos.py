"""Kerberos (SPNEGO) credentials for the HTTP clients of a secured cluster: WebHDFS and Atlas.

Through ``requests-gssapi`` (on MIT's GSSAPI via ``gssapi``): the maintained successor of requests-kerberos
(which wraps the unmaintained pykerberos), and it takes explicit ``gssapi.Credentials``, so a keytab is
used without touching the user's ticket cache or the process environment.

Where the credentials come from, first found wins:

1. a keytab: ``MODELGOV_KERBEROS_KEYTAB`` + ``MODELGOV_KERBEROS_PRINCIPAL`` (or ``kerberos.keytab`` /
   ``kerberos.principal`` in ``modelgov.yaml``). GSSAPI gets tickets from it into a private in-memory cache and
   gets new ones from it when they expire, so a long run never dies of an expired ticket;
2. the ticket cache (``KRB5CCNAME``, or ``kerberos.ccache``; what ``kinit`` filled), optionally of
   ``MODELGOV_KERBEROS_PRINCIPAL``. An expired ticket here cannot be renewed by us: that is an error.

``acquire`` is the preflight: it fails with ``KerberosError`` naming the principal and the realm (never a
keytab's content or a ticket) when there is no ticket, it expired, or the KDC refuses the principal.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from governance.errors import ConfigError

if TYPE_CHECKING:
    from governance.config import Config

KEYTAB_ENV = "MODELGOV_KERBEROS_KEYTAB"
PRINCIPAL_ENV = "MODELGOV_KERBEROS_PRINCIPAL"
INSTALL_HINT = "pip install 'model-governance[kerberos]' (requests-gssapi; needs libkrb5-dev to build gssapi)"


class KerberosError(ConfigError):
    """No usable Kerberos credentials: no ticket, an expired one, or a principal the KDC refused."""


@dataclass(frozen=True)
class KerberosSettings:
    principal: str | None = None
    keytab: str | None = None  # a path; the file's bytes are never read by modelgov itself
    ccache: str | None = None

    @property
    def source(self) -> str:
        if self.keytab:
            return f"keytab {self.keytab}"
        return f"ticket cache {self.ccache or os.environ.get('KRB5CCNAME') or '(default)'}"

    @classmethod
    def load(cls, config: Config | None = None) -> KerberosSettings:
        from governance.config import load_config

        section = (config or load_config()).kerberos
        principal = os.environ.get(PRINCIPAL_ENV) or section.get("principal")
        keytab = os.environ.get(KEYTAB_ENV) or section.get("keytab")
        if keytab and not principal:
            raise KerberosError(f"a keytab ({keytab}) needs its principal: set {PRINCIPAL_ENV} "
                                "(or kerberos.principal in modelgov.yaml)")
        if keytab and not os.path.isfile(keytab):
            raise KerberosError(f"{KEYTAB_ENV}={keytab}: no such keytab file")
        return cls(principal or None, keytab or None, section.get("ccache"))


@dataclass(frozen=True)
class Ticket:
    """Who the credentials are and until when (for preflight and ``modelgov doctor``)."""

    principal: str
    expires: datetime | None
    source: str

    @property
    def realm(self) -> str:
        return self.principal.rpartition("@")[2]


def _realm_of(principal: str | None) -> str:
    if principal and "@" in principal:
        return principal.rpartition("@")[2]
    return "the default realm of krb5.conf"


def _gssapi() -> Any:
    try:
        import gssapi
    except ImportError as exc:
        raise ConfigError(f"Kerberos needs the kerberos extra: {INSTALL_HINT}") from exc
    return gssapi


_caches = itertools.count()


def acquire(settings: KerberosSettings | None = None) -> tuple[Any, Ticket]:
    """``gssapi.Credentials`` to initiate SPNEGO with, and the ticket they stand for; KerberosError otherwise.
    A keytab's tickets go to a new private cache each time (a renewal too): a cache named per principal
    only was seen to hand a client the ticket of an earlier client of another KDC with the same realm name."""
    gssapi = _gssapi()
    settings = settings or KerberosSettings.load()
    who = settings.principal or "the ticket cache's principal"
    realm = _realm_of(settings.principal)
    name = gssapi.Name(settings.principal, gssapi.NameType.kerberos_principal) if settings.principal else None
    store: dict[bytes, bytes] = {}
    if settings.keytab:
        # a private cache: tickets from the keytab never land in (or are read from) the user's cache
        cache = f"MEMORY:modelgov-{os.getpid()}-{next(_caches)}"
        store = {b"client_keytab": settings.keytab.encode(), b"ccache": cache.encode()}
    elif settings.ccache:
        store = {b"ccache": settings.ccache.encode()}
    try:
        creds = gssapi.Credentials(name=name, usage="initiate", store=store or None)
        lifetime = creds.lifetime  # asks the mechanism: a keytab gets its first (or a fresh) ticket here
        principal = str(creds.name)
    except gssapi.exceptions.GSSError as exc:
        raise KerberosError(_explain(exc, who, realm, settings)) from None
    if not lifetime:
        raise KerberosError(f"Kerberos: the ticket of {principal} (realm {_realm_of(principal)}) in "
                            f"{settings.source} has expired; run kinit again, or set {KEYTAB_ENV} and "
                            f"{PRINCIPAL_ENV} so modelgov gets new tickets itself")
    expires = datetime.now(UTC) + timedelta(seconds=lifetime) if lifetime else None
    return creds, Ticket(principal, expires, settings.source)


def _explain(exc: Exception, who: str, realm: str, settings: KerberosSettings) -> str:
    """One sentence a person can act on; GSSAPI's own text (no secrets in it) kept at the end."""
    text = " ".join(str(exc).split())
    minor = re.search(r"Minor \(\d+\): (.*)$", text)  # GSSAPI's "Major (n): ..., Minor (n): <the reason>"
    detail = minor.group(1) if minor else text
    lowered = detail.lower()
    if "not found in kerberos database" in lowered or "client not found" in lowered:
        return (f"Kerberos: the KDC of realm {realm} does not know the principal {who} ({settings.source}): "
                f"check {PRINCIPAL_ENV} against the keytab's principal ({detail})")
    if "expired" in lowered:
        return (f"Kerberos: the ticket of {who} (realm {realm}) in {settings.source} has expired; run kinit "
                f"again, or set {KEYTAB_ENV} and {PRINCIPAL_ENV} so modelgov gets new tickets itself ({detail})")
    if settings.keytab:
        return (f"Kerberos: cannot get a ticket for {who} (realm {realm}) from {settings.source}: {detail}")
    return (f"Kerberos: no valid ticket for {who} (realm {realm}) in {settings.source}: run kinit, or set "
            f"{KEYTAB_ENV} and {PRINCIPAL_ENV} ({detail})")


RENEW_MARGIN_S = 5.0  # credentials with less left than this are replaced before a request


def spnego_auth(settings: KerberosSettings | None = None, *, hosts: Iterable[str] | None = None) -> Any:
    """A requests auth (requests-gssapi) holding credentials from ``acquire`` (the preflight: it raises
    KerberosError now), whose ``ticket`` says who and until when.

    It sends a SPNEGO token with every request (opportunistic: a streamed upload body cannot be sent a second
    time after a 401 challenge), and before each request replaces credentials about to expire: from the
    keytab, a new ticket (GSSAPI does not do it for credentials already held); from a ticket cache, a clear
    KerberosError. Mutual authentication (the server's answer token) is not checked: requests-gssapi keeps one
    context per host, which the registry's parallel uploads to one namenode would overwrite, and the server
    is authenticated by its TLS certificate (``swebhdfs://``, ``https://`` Atlas) already. Token generation is
    serialized for the same reason. ``hosts``: the only hosts given a token (the namenodes: a datanode takes
    the delegation token of the namenode's redirect, and has no HTTP service principal of its own)."""
    try:
        from requests_gssapi import DISABLED, HTTPSPNEGOAuth
    except ImportError as exc:
        raise ConfigError(f"Kerberos needs the kerberos extra: {INSTALL_HINT}") from exc
    settings = settings or KerberosSettings.load()
    creds, ticket = acquire(settings)

    lock = threading.RLock()
    only = {h.lower() for h in hosts} if hosts is not None else None

    class RenewingSpnegoAuth(HTTPSPNEGOAuth):
        def __call__(self, request: Any) -> Any:
            if only is not None and (urlsplit(request.url).hostname or "").lower() not in only:
                return request
            with lock:
                self.renew()
                return super().__call__(request)

        def handle_response(self, response: Any, **kwargs: Any) -> Any:
            with lock:
                return super().handle_response(response, **kwargs)

        def renew(self) -> None:
            try:
                left = self.creds.lifetime or 0
            except Exception:  # noqa: BLE001 - gssapi: the cache's ticket expired or went away
                left = 0
            if left <= RENEW_MARGIN_S:
                self.creds, self.ticket = acquire(settings)

    auth = RenewingSpnegoAuth(creds=creds, mutual_authentication=DISABLED, opportunistic_auth=True)
    auth.ticket = ticket
    return auth


def refused_message(url: str, ticket: Ticket) -> str:
    """A 401 answered to a valid SPNEGO token: the server does not accept this principal."""
    return (f"Kerberos: {url} refused {ticket.principal} (realm {ticket.realm}, from {ticket.source}): the server "
            "does not accept this principal, or its service principal (HTTP/<host>) is not in a realm we share")
