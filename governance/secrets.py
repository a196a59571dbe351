"""Credentials never travel in URLs: a URL we would store or print must not carry any.

Prefect stores flow parameters and logs, the registry manifest records the source, Atlas records staging,
registry and code URIs: a token in any of those URLs would persist. So every URL an operator hands us
(source, registry, target, Atlas) is checked before a flow run exists, and refused with a message saying
where the credential goes instead.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from governance.errors import CredentialInUrl

# query parameter names that carry credentials: tokens, keys, (pre)signatures, passwords, X-Amz-* ...
CREDENTIAL_PARAM = re.compile(r"(token|key|signature|password|passwd|pwd|secret|sig|credential|auth)|^x-amz-",
                              re.IGNORECASE)

HOW_TO_PASS = {
    "source": "for git sources use git's credential helper (git config credential.helper) or ~/.netrc; "
              "for archive URLs put the credentials in ~/.netrc",
    "registry": "S3: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials or AWS_PROFILE; "
                "HDFS: MODELGOV_HDFS_USER or Kerberos (MODELGOV_HDFS_AUTH=kerberos)",
    "target": "the target's own credential files (kubeconfig for KServe) or the environment",
    "Atlas URL": "set ATLAS_USERNAME/ATLAS_PASSWORD or ATLAS_TOKEN in the environment (or ATLAS_AUTH=kerberos)",
}


def credential_problem(url: str) -> str | None:
    """What in ``url`` looks like a credential (user info, a credential-like query parameter), or None."""
    text = url[4:] if url.startswith("git+") else url
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc and "@" not in text.split("?", 1)[0]:
        return None
    if "@" in parts.netloc and not (parts.scheme.endswith("ssh") and parts.password is None):
        # (an ssh user name such as git@ is an account, not a secret: ssh authenticates with keys)
        return "user information (user:password@ or token@) in the host part"
    names = sorted({name for name, _ in parse_qsl(parts.query, keep_blank_values=True)
                    if CREDENTIAL_PARAM.search(name)})
    if names:
        return f"credential-like query parameter(s) {', '.join(names)}"
    return None


def redact(url: str) -> str:
    """``url`` with user information dropped and credential-like query values replaced by ``***``."""
    prefix, text = ("git+", url[4:]) if url.startswith("git+") else ("", url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc if parts.scheme.endswith("ssh") and parts.password is None \
        else parts.netloc.rsplit("@", 1)[-1]
    query = "&".join(f"{name}=***" if CREDENTIAL_PARAM.search(name) else (f"{name}={value}" if value else name)
                     for name, value in parse_qsl(parts.query, keep_blank_values=True))
    return prefix + urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def refuse_credentials(url: str | None, what: str) -> None:
    """Raise CredentialInUrl (a ConfigError) when ``url`` carries a credential; the message shows it redacted and says where
    the credential belongs (``what``: source, registry, target or Atlas URL)."""
    if not url:
        return
    problem = credential_problem(url)
    if problem:
        raise CredentialInUrl(f"the {what} {redact(url)} contains {problem}; credentials in URLs would be stored "
                          f"in flow-run records, the registry manifest, Atlas and logs, so they are refused. Instead: "
                          f"{HOW_TO_PASS.get(what, 'pass them through the environment')}")


def refuse_urls_with_credentials(*, source: str | None = None, target: str | None = None,
                                 registry: str | None = None, atlas: str | None = None) -> None:
    """Check every URL of one run; the first with a credential is refused (see ``refuse_credentials``)."""
    for what, url in (("source", source), ("target", target), ("registry", registry), ("Atlas URL", atlas)):
        refuse_credentials(url, what)
