"""TLS settings shared by every network sink (resmo's `tls:` keys), and the SSLContext they make.

resmo's HTTP sinks take `insecureSkipVerify`, `serverName`, `caFile`, `certFile`, `keyFile`;
its Kafka sink adds `enable`. One model covers both so every sink reads TLS the same way.
"""

from __future__ import annotations

import ssl

from pydantic import Field, field_validator

from eventpipe.core.model import Model


class TlsConfig(Model):
    """TLS for a connection to a receiver."""

    enable: bool = Field(
        default=False,
        description="Kafka only (resmo): use TLS. HTTP sinks use TLS when the URL is https://.")
    insecure_skip_verify: bool = Field(
        default=False, alias="insecureSkipVerify",
        description="Do not verify the server certificate (testing only).")
    server_name: str = Field(
        default="", alias="serverName",
        description="resmo's SNI override. Not supported yet: a non-empty value is a startup "
        "error (point the URL at the name in the certificate instead).")
    ca_file: str = Field(
        default="", alias="caFile",
        description="PEM file of CA certificates to trust instead of the system's.")
    cert_file: str = Field(default="", alias="certFile",
                           description="PEM client certificate (mutual TLS).")
    key_file: str = Field(default="", alias="keyFile",
                          description="PEM private key of the client certificate.")


    @field_validator("server_name")
    @classmethod
    def _no_server_name(cls, value: str) -> str:
        if value:
            raise ValueError("tls.serverName is not supported yet by eventpipe; use a URL "
                             "whose host is the name in the server's certificate")
        return value


def ssl_context(tls: TlsConfig | None) -> ssl.SSLContext | None:
    """An SSLContext for these settings, or None to use the library default (system CAs).

    Raises ValueError naming the file when a CA/cert/key file cannot be loaded, so a bad path is
    a startup error rather than a stream of retriable send failures.
    """
    if tls is None or not (tls.insecure_skip_verify or tls.ca_file or tls.cert_file):
        return None
    try:
        context = ssl.create_default_context(cafile=tls.ca_file or None)
        if tls.cert_file:
            context.load_cert_chain(tls.cert_file, tls.key_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"tls: cannot load certificates: {exc}") from exc
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
