"""Rendering each supported template feature against Event dicts."""

from __future__ import annotations

import copy

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventpipe.layout import RenderError, compile_layout, compile_template

EVENT: dict[str, object] = {
    "kind": "Event",
    "apiVersion": "v1",
    "metadata": {
        "name": "web-7d4b9c-x2x.17a1b2c3d4e5f607",
        "namespace": "shop",
        "uid": "0b6a3f2e-1111-4222-8333-944445555666",
        "resourceVersion": "123456",
        "creationTimestamp": "2024-05-01T10:00:00Z",
    },
    "involvedObject": {
        "kind": "Pod",
        "namespace": "shop",
        "name": "web-7d4b9c-x2x",
        "uid": "7c1d",
        "apiVersion": "v1",
        "resourceVersion": "99",
        "fieldPath": "spec.containers{web}",
        "labels": {"app": "web", "app.kubernetes.io/name": "shop-web", "owner": "team-a"},
    },
    "reason": "BackOff",
    "message": 'Back-off restarting failed container "web" <pod> & co',
    "source": {"component": "kubelet", "host": "node-1"},
    "firstTimestamp": "2024-05-01T09:58:01Z",
    "lastTimestamp": "2024-05-01T10:04:31Z",
    "count": 42,
    "type": "Warning",
    "eventTime": None,
    "reportingComponent": "kubelet",
    "reportingInstance": "node-1",
    "clusterName": "prod-eu",
}

V1_EVENT: dict[str, object] = {
    "apiVersion": "events.k8s.io/v1",
    "deprecatedCount": 3,
    "deprecatedFirstTimestamp": "2023-02-16T18:25:07Z",
    "deprecatedLastTimestamp": "2023-02-16T18:25:09Z",
    "deprecatedSource": {"component": "default-scheduler"},
    "eventTime": None,
    "kind": "Event",
    "metadata": {"name": "some-pod.174461445d6d3cff", "namespace": "test-530513", "uid": "f3ac"},
    "note": "Successfully assigned test-530513/some-pod to node-a",
    "reason": "Scheduled",
    "regarding": {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "some-pod",
        "namespace": "test-530513",
    },
    "type": "Normal",
}


def render(source: str, event: dict[str, object] = EVENT) -> str:
    return compile_template(source).render(event)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ .Reason }}", "BackOff"),
        ("{{ .reason }}", "BackOff"),
        ("{{ .InvolvedObject.Name }}", "web-7d4b9c-x2x"),
        ("{{ .involvedObject.name }}", "web-7d4b9c-x2x"),
        ("{{ .InvolvedObject.UID }} {{ .InvolvedObject.APIVersion }}", "7c1d v1"),
        (
            "{{ .InvolvedObject.ResourceVersion }} {{ .InvolvedObject.FieldPath }}",
            "99 spec.containers{web}",
        ),
        ("{{ .Source.Component }}@{{ .Source.Host }}", "kubelet@node-1"),
        ("{{ .Metadata.Name }}", "web-7d4b9c-x2x.17a1b2c3d4e5f607"),
        (
            "{{ .Name }} {{ .Namespace }} {{ .UID }}",
            "web-7d4b9c-x2x.17a1b2c3d4e5f607 shop 0b6a3f2e-1111-4222-8333-944445555666",
        ),
        ("{{ .ResourceVersion }} {{ .CreationTimestamp }}", "123456 2024-05-01T10:00:00Z"),
        ("{{ .ClusterName }}", "prod-eu"),
        ("{{ .ReportingController }}", "kubelet"),
        ("{{ .Count }}", "42"),
        ("{{ .InvolvedObject.Labels.owner }}", "team-a"),
        ("{{ .Missing }}|{{ .InvolvedObject.Missing.Deeper }}|{{ .EventTime }}", "||"),
        ("{{ .Labels }}", ""),
        ("{{ .Source }}", "map[component:kubelet host:node-1]"),
        ("{{ . | len }}", str(len(EVENT))),
    ],
)
def test_fields(source: str, expected: str) -> None:
    assert render(source) == expected


def test_events_k8s_io_v1_answers_to_core_names() -> None:
    source = (
        "{{ .InvolvedObject.Kind }}/{{ .InvolvedObject.Name }}: {{ .Message }} "
        "x{{ .Count }} from {{ .Source.Component }} at {{ .FirstTimestamp }}"
    )
    assert render(source, V1_EVENT) == (
        "Pod/some-pod: Successfully assigned test-530513/some-pod to node-a "
        "x3 from default-scheduler at 2023-02-16T18:25:07Z"
    )
    assert render("{{ .Regarding.Name }} {{ .Note }}", EVENT) == (
        "web-7d4b9c-x2x " + str(EVENT["message"])
    )


@pytest.mark.parametrize(
    ("event", "iso", "ms"),
    [
        (EVENT, "2024-05-01T09:58:01.000Z", 1714557481000),  # firstTimestamp, as resmo
        (V1_EVENT, "2023-02-16T18:25:07.000Z", 1676571907000),  # deprecatedFirstTimestamp
        (
            {"firstTimestamp": None, "eventTime": "2021-08-03T07:10:31.123456Z"},
            "2021-08-03T07:10:31.123Z",
            1627974631123,
        ),
        (
            {
                "firstTimestamp": None,
                "eventTime": None,
                "series": {"lastObservedTime": "2021-08-03T07:10:31.5Z"},
            },
            "2021-08-03T07:10:31.500Z",
            1627974631500,
        ),
        (
            {"firstTimestamp": None, "metadata": {"creationTimestamp": "2015-12-03T06:39:03Z"}},
            "2015-12-03T06:39:03.000Z",
            1449124743000,
        ),
        (
            {"eventTime": "2021-08-03T09:10:31.999999+02:00"},
            "2021-08-03T07:10:31.999Z",
            1627974631999,
        ),
        (
            {"firstTimestamp": "not a time", "lastTimestamp": "2024-01-01T00:00:00Z"},
            "2024-01-01T00:00:00.000Z",
            1704067200000,
        ),
        ({}, "0001-01-01T00:00:00.000Z", -62135596800000),
    ],
)
def test_timestamp_methods(event: dict[str, object], iso: str, ms: int) -> None:
    assert render("{{ .GetTimestampISO8601 }}", event) == iso
    assert render("{{ .GetTimestampMs }}", event) == str(ms)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ .Reason | lower | quote }}", '"backoff"'),
        ("{{ .Reason | upper }} {{ .Reason | squote }}", "BACKOFF 'BackOff'"),
        ('{{ .Missing | default "none" }} {{ .Reason | default "none" }}', "none BackOff"),
        ('{{ default "zero" .Missing }} {{ 0 | default 7 }}', "zero 7"),
        ('{{ "  padded \\n" | trim }}|', "padded|"),
        (
            "{{ .Message | trunc 12 }}|{{ trunc -4 .Reason }}|{{ trunc 99 .Reason }}",
            "Back-off res|kOff|BackOff",
        ),
        ('{{ .Reason | replace "Off" "On" }}', "BackOn"),
        (
            '{{ contains "restart" .Message }} {{ .Reason | hasPrefix "Back" }} '
            '{{ hasSuffix "x" .Reason }}',
            "true true false",
        ),
        ('{{ "web-1" | trimPrefix "web-" }} {{ trimSuffix ".log" "a.log" }}', "1 a"),
        ('{{ title "hello wide-world" }}', "Hello Wide-World"),
        ('{{ join ", " (list) }}', None),  # `list` is not supported: compile error, see below
        (
            '{{ printf "%s x%d (%v) %q %5.1f|%-4s|%04d %t %x" '
            '.Reason .Count .Count "a\\"b" 2.25 "ab" 7 true 255 }}',
            'BackOff x42 (42) "a\\"b"   2.2|ab  |0007 true ff',
        ),
        ('{{ printf "%d %s" "str" }}', "%!d(string=str) %!s(MISSING)"),
        ('{{ printf "%s" .Reason .Count }}', "BackOff%!(EXTRA int=42)"),
        ('{{ print "a" 1 2 "b" }}|{{ println .Reason .Count }}', "a1 2b|BackOff 42\n"),
        ('{{ index .InvolvedObject.Labels "app.kubernetes.io/name" }}', "shop-web"),
        ('{{ index . "involvedObject" "labels" "app" }}{{ index .Nope "x" }}', "web"),
        (
            '{{ len .Reason }} {{ len .InvolvedObject.Labels }} {{ len .Missing }} {{ len "é" }}',
            "7 3 0 2",
        ),
        ("{{ toString .Count }}{{ toString .Missing }}", "42"),
        ('{{ quote .Reason .Count }} {{ quote "tab\\there" }}', '"BackOff" "42" "tab\\there"'),
        ('{{ "x" | printf "%s-%s" "y" }}', "y-x"),
        ('{{ (index .InvolvedObject "labels").owner | upper }}', "TEAM-A"),
        (
            '{{ ternary "yes" "no" (eq .Type "Warning") }} {{ coalesce .Missing "" .Reason }}',
            "yes BackOff",
        ),
        ("{{ empty .Missing }} {{ empty .Reason }}", "true false"),
        ('{{ .Reason | indent 2 }}|{{ "a\\nb" | nindent 1 }}', "  BackOff|\n a\n b"),
        (
            "{{ 1.5 }} {{ 1e6 }} {{ 100000.0 }} {{ 0.00001 }} {{ 0x1F }} {{ 017 }} {{ -3 }}",
            "1.5 1e+06 100000 1e-05 31 15 -3",
        ),
        ("{{ `raw \\n {{ }}` }}", "raw \\n {{ }}"),
        ('{{ "\\u00e9\\x41\\101" }}', "éAA"),
        ("{{ true }} {{ false }} {{ nil }}", "true false "),
    ],
)
def test_functions_and_pipelines(source: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(ValueError, match="function 'list' not defined"):
            compile_template(source)
        return
    assert render(source) == expected


def test_to_json_is_the_event_exactly() -> None:
    out = render("{{ toJson . }}")
    assert out == orjson.dumps(EVENT).decode()
    assert orjson.loads(out) == EVENT
    assert "<pod> & co" in out  # no Go-style HTML escaping
    pretty = render("{{ toPrettyJson .Source }}")
    assert pretty == '{\n  "component": "kubelet",\n  "host": "node-1"\n}'
    assert render("{{ toJson .Missing }} {{ toJson .Count }}") == "null 42"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('{{ if eq .Type "Warning" }}W{{ else }}N{{ end }}', "W"),
        ('{{ if eq .Type "Normal" }}N{{ else if eq .Type "Warning" }}W{{ else }}?{{ end }}', "W"),
        ('{{ if eq .Type "Normal" "Warning" }}either{{ end }}', "either"),
        ('{{ if ne .Reason "BackOff" }}x{{ else }}same{{ end }}', "same"),
        ("{{ if .Missing }}x{{ else }}empty{{ end }}", "empty"),
        ('{{ if eq .Missing "" }}zero{{ end }}{{ if eq .Missing 0 }}zero{{ end }}', "zerozero"),
        ("{{ if and .Reason .Count }}{{ and .Reason .Count }}{{ end }}", "42"),
        ('{{ or .Missing "" "fallback" }} {{ and .Reason .Missing "x" }}|', "fallback |"),
        ("{{ if not .Missing }}not{{ end }}", "not"),
        ("{{ if gt .Count 10 }}many{{ end }}{{ if lt .Count 10 }}few{{ end }}", "many"),
        ('{{ if ge .Count 42 }}ge{{ end }}{{ if le "a" "b" }}le{{ end }}', "gele"),
        ("{{ with .Source }}{{ .Component }}{{ end }}", "kubelet"),
        ("{{ with .Missing }}x{{ else }}no{{ end }}", "no"),
        ("{{ with .Missing }}x{{ else with .Source }}{{ .Host }}{{ end }}", "node-1"),
        (
            "{{ with $o := .InvolvedObject }}{{ $o.Kind }}/{{ .Name }}/{{ $.Reason }}{{ end }}",
            "Pod/web-7d4b9c-x2x/BackOff",
        ),
        (
            "{{ range $k, $v := .Source }}{{ $k }}={{ $v }};{{ end }}",
            "component=kubelet;host=node-1;",
        ),
        ("{{ range .Source }}{{ . }},{{ end }}", "kubelet,node-1,"),
        ("{{ range $v := .Source }}{{ $v }}{{ end }}", "kubeletnode-1"),
        ("{{ range .Missing }}x{{ else }}none{{ end }}", "none"),
        ("{{ $n := .Count }}{{ $n = 7 }}{{ $n }}", "7"),
        ("{{ 23 -}} < {{- 45 }}", "23<45"),
        ("a  {{- .Reason }}  b\n{{- /* gone */ -}}\n c", "aBackOff  bc"),
        ("{{-3}}", "-3"),
    ],
)
def test_control_flow(source: str, expected: str) -> None:
    assert render(source) == expected


def test_range_over_list_with_index_and_dot() -> None:
    event: dict[str, object] = {"items": [{"name": "a"}, {"name": "b"}], "reason": "R"}
    source = (
        "{{ range $i, $e := .items }}{{ $i }}:{{ .name }}:{{ $e.name }}:{{ $.Reason }} {{ end }}"
    )
    assert render(source, event) == "0:a:a:R 1:b:b:R "


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("{{ index .InvolvedObject.Labels 3 }}", "map key must be a string"),
        ("{{ index .Items 5 }}", "index out of range: 5"),
        ("{{ .Reason.Kind }}", "can't evaluate field Kind in type string"),
        ('{{ trunc "5" .Reason }}', "trunc: expected an integer, got string"),
        ("{{ upper .Count }}", "upper: expected a string, got int"),
        ('{{ eq .Count "42" }}', "eq: incompatible types for comparison"),
        ("{{ range .Reason }}{{ end }}", "range can't iterate over string"),
        ("{{ len .Count }}", "len of type int"),
        ('{{ printf "%999999d" 1 }}', "width or precision above"),
    ],
)
def test_render_errors_say_why(source: str, why: str) -> None:
    event = dict(EVENT, Items=[1, 2])
    with pytest.raises(RenderError) as info:
        compile_template(source, where="receivers[3].file.layout").render(event)
    assert str(info.value).startswith("receivers[3].file.layout: ")
    assert why in str(info.value)
    assert "Back-off restarting" not in str(info.value)
    assert info.value.retriable is False


def test_sandbox_sees_only_dict_keys() -> None:
    class Secret:
        token = "s3cr3t"

    event = {"obj": Secret(), "message": "m"}
    assert render('{{ .__class__ }}{{ index . "__dict__" }}', event) == ""
    with pytest.raises(RenderError, match="can't evaluate field token in type Secret"):
        render("{{ .obj.token }}", event)
    with pytest.raises(RenderError, match="can't evaluate field __len__"):
        render("{{ .message.__len__ }}", event)


def test_output_is_bounded() -> None:
    event: dict[str, object] = {"items": list(range(300)), "big": "x" * 1000}
    nested = "{{ range .items }}{{ range $.items }}{{ $.big }}{{ end }}{{ end }}"
    with pytest.raises(RenderError, match="output would exceed 1048576 characters"):
        render(nested, event)
    triple = "{{ range .items }}{{ range $.items }}{{ range $.items }}{{ end }}{{ end }}{{ end }}"
    with pytest.raises(RenderError, match="more than 100000 range iterations"):
        render(triple, event)
    grow = (
        '{{ .big | replace "" "0123456789" | replace "" "0123456789" | replace "" "0123456789" }}'
    )
    with pytest.raises(RenderError, match="replace: result would exceed"):
        render(grow, event)
    with pytest.raises(RenderError, match="output exceeds 10 characters"):
        compile_template("{{ .big }}", max_output=10).render(event)


def test_rendering_does_not_change_the_event() -> None:
    before = copy.deepcopy(EVENT)
    render("{{ $x := .Reason }}{{ range $k, $v := . }}{{ $k }}{{ end }}{{ toJson . }}")
    assert before == EVENT


def test_layout_keeps_shape_and_non_string_leaves() -> None:
    layout = compile_layout(
        {
            "region": "us-west-2",
            "priority": 3,
            "enabled": True,
            "nothing": None,
            "details": {"kind": "{{ .InvolvedObject.Kind }}", "tags": ["event", "{{ .Reason }}"]},
        }
    )
    rendered = layout.render(EVENT)
    assert rendered == {
        "region": "us-west-2",
        "priority": 3,
        "enabled": True,
        "nothing": None,
        "details": {"kind": "Pod", "tags": ["event", "BackOff"]},
    }
    assert list(rendered) == ["region", "priority", "enabled", "nothing", "details"]
    assert orjson.loads(layout.render_json(EVENT)) == rendered
    assert layout.render(EVENT) is not rendered  # fresh containers per event


def test_string_layout_render_json_is_the_text_unquoted() -> None:
    layout = compile_layout("{{ .Reason }}: {{ .Message }}")
    assert layout.render(EVENT) == f"BackOff: {EVENT['message']}"
    assert layout.render_json(EVENT) == f"BackOff: {EVENT['message']}".encode()
    assert compile_layout("{{ toJson . }}").render_json(EVENT) == orjson.dumps(EVENT)


def test_layout_render_error_names_the_leaf() -> None:
    layout = compile_layout(
        {"a": {"b": ["ok", "{{ index .Items 9 }}"]}}, where="receivers[0].sqs.layout"
    )
    with pytest.raises(
        RenderError, match=r"^receivers\[0\]\.sqs\.layout\.a\.b\[1\]: index: index out of range: 9$"
    ):
        layout.render(dict(EVENT, Items=[]))


@given(st.text().filter(lambda s: "{{" not in s))
def test_text_without_actions_renders_as_itself(text: str) -> None:
    assert compile_template(text).render({}) == text


@given(st.text(max_size=50))
def test_quoted_strings_round_trip_through_go_quote(text: str) -> None:
    # `quote` produces a Go string literal; parsing it back as a template literal gives the text.
    quoted = compile_template("{{ quote .s }}").render({"s": text})
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return  # lone surrogates cannot be written as \u escapes Go accepts
    assert compile_template("{{ " + quoted + " }}").render({}) == text
