"""What every listener shares: TLS server credentials that reload, and request authentication.

``tls`` and ``auth`` sit under each endpoint (``receivers.otlp.protocols.grpc|http``,
``exporters.prometheus``) in the Collector's ``configtls`` / ``bearertokenauth`` vocabulary.
"""
