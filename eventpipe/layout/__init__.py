"""Layouts: the sandboxed subset of Go text/template that resmo's `layout:` configs use.

resmoio/kubernetes-event-exporter renders Go templates (with sprig) against its Go Event struct;
eventpipe renders the same templates against the Event as a plain JSON dict, in pure Python,
compiled once at config time into closures (no eval, no Jinja). What a template can see:

- Fields: `.Reason`, `.InvolvedObject.Name`, `.Source.Component`; Go names map to JSON names
  (`UID` -> `uid`, `APIVersion` -> `apiVersion`) and exact JSON names work too
  (`.involvedObject.name`, `.Labels.app`). ObjectMeta is embedded as in Go (`.Name`,
  `.Namespace`, `.UID`, `.Labels`, ... read `metadata`). events.k8s.io/v1 objects answer to the
  core names (`.InvolvedObject` -> `regarding`, `.Message` -> `note`, `.Count` ->
  `deprecatedCount`, `.Source`, `.FirstTimestamp`, `.LastTimestamp` -> `deprecated*`) and back.
  `.ClusterName` reads `clusterName`, which the caller puts in the event dict.
- A missing field renders as "" (not Go's `<no value>`): resmo renders a struct, where an unset
  string is "", and that is what its users' layouts expect. Missing is also equal to any empty
  value in `eq`/`ne` and false in `if`. Unlike Go's struct, a missing number is "" not "0".
- Methods `.GetTimestampISO8601` ("2006-01-02T15:04:05.000Z", UTC, milliseconds truncated) and
  `.GetTimestampMs` (ms since the epoch). resmo's own code (pkg/kube/event.go) takes
  `firstTimestamp`, else `eventTime`; `deprecatedFirstTimestamp` (events.k8s.io's name of
  firstTimestamp) is taken right after `firstTimestamp`, and when all are null we go on to
  `series.lastObservedTime`, `lastTimestamp`, `deprecatedLastTimestamp`,
  `metadata.creationTimestamp`, and only then print Go's zero time (ms -62135596800000).
- Actions, `{{-`/`-}}` trims, comments, pipelines, parentheses, string/raw/number/bool/nil
  literals, variables (`$`, `$x :=`, `$x =`), `if`/`else if`/`else with`/`with`/`range` (lists
  by index, maps by sorted key)/`else`/`end`, and the functions in `funcs.FUNCS` plus `and`/`or`.
  `toJson .` is the event dict exactly (orjson: key order kept, `<>&` not HTML-escaped; resmo
  would print every struct field, including empty ones). Values print as Go's %v
  (`map[a:b]`, `[x y]`, floats like Go).
- Not supported (a LayoutError that names it): `define`/`template`/`block`, `break`/`continue`,
  character literals, `now`/`date`/`env` and any other function not listed.

Sandboxing: a template reads dict keys and list items only, never Python attributes, files or
the environment; a template renders at most `MAX_OUTPUT` characters and 100k range iterations.
"""

from eventpipe.layout.errors import LayoutError, RenderError
from eventpipe.layout.template import (
    MAX_OUTPUT,
    Layout,
    Template,
    compile_layout,
    compile_template,
)

__all__ = [
    "MAX_OUTPUT",
    "Layout",
    "LayoutError",
    "RenderError",
    "Template",
    "compile_layout",
    "compile_template",
]
