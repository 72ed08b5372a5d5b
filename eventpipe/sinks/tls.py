"""TLS settings shared by every network sink (resmo's `tls:` keys); the model only.

resmo's HTTP sinks take `insecureSkipVerify`, `serverName`, `caFile`, `certFile`, `keyFile`;
its Kafka sink adds `enable`. One model covers both so every sink reads TLS the same way. The
SSLContext is made where the connection is: `eventpipe.sinks.http.ssl_context`.
"""

from __future__ import annotations

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
