"""Route tree evaluation: which receivers an Event goes to (resmo's semantics, compiled).

    router = compile_route(config.route)
    router.receivers_for(event_dict) -> frozenset[str]
    router.needs_event / router.static_receivers / router.receivers
"""

from eventpipe.routing.router import Router, compile_route

__all__ = ["Router", "compile_route"]
