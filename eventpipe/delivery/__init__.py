"""The one delivery driver: batching, retry, splitting, dead letters, acks and storm control
for every receiver, behind the `Sink[P]` contract (`eventpipe.delivery.contract`)."""

# The config package builds the `Receiver` model from `eventpipe.delivery.config` (and the
# sinks' models): loading it first means the models exist whichever module is imported first.
import eventpipe.config  # noqa: F401
