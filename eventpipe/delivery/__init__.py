"""The one delivery driver: batching, retry, splitting, dead letters, acks and storm control
for every receiver, behind the `Sink[P]` contract (`eventpipe.delivery.contract`)."""

