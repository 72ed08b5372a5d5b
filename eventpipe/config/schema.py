"""The JSON Schema of the config file, for `eventpipe config schema` and the Helm chart.

Generated from the models, so the field descriptions are the reference documentation. Keys are
the YAML names (camelCase aliases); durations and sizes show both accepted forms.
"""

from __future__ import annotations

from eventpipe import __version__
from eventpipe.config.models import config_model
from eventpipe.config.sinks import SINK_MODELS


def config_json_schema() -> dict[str, object]:
    """Return the JSON Schema (draft 2020-12) describing the whole config file, every receiver
    type included."""
    schema: dict[str, object] = config_model(SINK_MODELS).model_json_schema(
        by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"eventpipe {__version__} configuration"
    return schema
