"""A real SPNEGO acceptor for the emulators (``gssapi`` with a service keytab from a real KDC), so the
Kerberos path of modelgov's clients is tested against real tickets, as Hadoop's and Atlas's
``KerberosAuthenticationHandler`` would see them: ``Authorization: Negotiate <token>`` in, the client's
principal (mapped to its short name, like the default ``auth_to_local`` rule) out."""

from __future__ import annotations

import base64
import threading

import gssapi


class SpnegoAcceptor:
    """Accepts the SPNEGO tokens of a service principal's keytab (``HTTP/localhost@REALM``)."""

    def __init__(self, keytab: str):
        self.creds = gssapi.Credentials(usage="accept", store={b"keytab": keytab.encode()})
        self.refused: list[str] = []  # why tokens were refused (tests read it)
        self.principals: list[str] = []  # who authenticated (full principal names)
        self._lock = threading.Lock()

    def authenticate(self, header: str | None) -> tuple[str | None, str | None]:
        """(short user name, the answer token for ``WWW-Authenticate``) or (None, None)."""
        if not header or not header.startswith("Negotiate "):
            return None, None
        try:
            context = gssapi.SecurityContext(creds=self.creds, usage="accept")
            out = context.step(base64.b64decode(header[len("Negotiate "):].strip()))
            if not context.complete:  # (gssapi raises a step's error here, on first use)
                return None, None
            principal = str(context.initiator_name)
        except (gssapi.exceptions.GSSError, ValueError) as exc:
            with self._lock:
                self.refused.append(" ".join(str(exc).split()))
            return None, None
        with self._lock:
            self.principals.append(principal)
        return principal.split("@")[0].split("/")[0], base64.b64encode(out).decode() if out else None
