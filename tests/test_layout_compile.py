"""Compile-time behaviour of layouts: what is rejected, and that the error says what and where."""

from __future__ import annotations

import pytest

import eventpipe.layout
from eventpipe.layout import LayoutError, compile_layout, compile_template


def test_public_surface_is_pinned() -> None:
    assert sorted(eventpipe.layout.__all__) == [
        "Layout",
        "LayoutError",
        "MAX_OUTPUT",
        "RenderError",
        "Template",
        "compile_layout",
        "compile_template",
    ]
    assert issubclass(LayoutError, ValueError)


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("{{ .Reason", "unclosed action"),
        ("{{ .Reason }", "unexpected '}' in action"),
        ("{{/* note", "unclosed comment"),
        ("{{ nope .Reason }}", "function 'nope' not defined"),
        ("{{ now }}", "function 'now' is not supported"),
        ('{{ .Message | date "2006" }}', "function 'date' is not supported"),
        ('{{ env "HOME" }}', "function 'env' is not supported"),
        ("{{ if .Reason }}x", "missing {{end}} for {{if}}"),
        ("{{ range .Items }}x{{ else }}", "expected {{end}} after {{else}}"),
        ("x{{ end }}", "unexpected {{end}}"),
        ("{{ else }}", "unexpected {{else}}"),
        ("{{ trunc 5 }}", "wrong number of args for trunc: want 2 got 1"),
        ('{{ .Reason | upper "x" }}', "wrong number of args for upper: want 1 got 2"),
        ("{{ and }}", "wrong number of args for and"),
        ('{{ define "x" }}y{{ end }}', "{{define}} is not supported"),
        ('{{ template "x" . }}', "{{template}} is not supported"),
        ("{{ range .Items }}{{ break }}{{ end }}", "{{break}} is not supported"),
        ("{{ $undefined }}", "undefined variable $undefined"),
        ("{{ if $x := .Reason }}{{ end }}{{ $x }}", "undefined variable $x"),
        ('{{ .Reason "arg" }}', "can't give argument to non-function .Reason"),
        ("{{ .Reason | .Message }}", "can't give argument to non-function .Message"),
        ("{{ 'c' }}", "character constants are not supported"),
        ("{{ 12abc }}", "bad number syntax"),
        ('{{ "open }}', "unterminated quoted string"),
        ('{{ "bad \\q escape" }}', "bad escape in string"),
        ("{{ (.Reason }}", "unclosed left paren"),
        ("{{ }}", "missing value for command"),
        ("{{ .Reason | }}", "missing value for command"),
        ("{{ if }}{{ end }}", "missing value for if"),
        ("{{ .Reason ) }}", "unexpected ')' in command"),
        ("{{ .Reason ! }}", "unexpected '!' in action"),
        ("{{ if .A }}{{ else nope }}{{ end }}", "after else"),
        ("{{ $x.Field := 1 }}", "can only declare or assign a plain variable"),
    ],
)
def test_compile_errors_name_the_problem(source: str, problem: str) -> None:
    with pytest.raises(LayoutError) as info:
        compile_template(source, where="receivers[0].webhook.layout.text")
    message = str(info.value)
    assert problem in message
    assert message.startswith("receivers[0].webhook.layout.text: ")


def test_compile_error_points_at_line_and_column() -> None:
    source = "first line\n  {{ .Reason | lower }} {{ .Message | nope }}"
    with pytest.raises(LayoutError, match=r"line 2, column 39, at 'nope }}'"):
        compile_template(source)


def test_layout_error_names_the_key_path() -> None:
    layout = {"details": {"kind": "{{ .InvolvedObject.Kind }}", "tags": ["ok", "{{ .X"]}}
    with pytest.raises(LayoutError, match=r"^receivers\[2\]\.kafka\.layout\.details\.tags\[1\]: "):
        compile_layout(layout, where="receivers[2].kafka.layout")


def test_layout_keys_that_are_not_identifiers_are_quoted_in_the_path() -> None:
    with pytest.raises(LayoutError, match=r"^layout\['x-api-key'\]: unclosed action"):
        compile_layout({"x-api-key": "{{"})


def test_layout_rejects_non_string_keys_and_odd_values() -> None:
    with pytest.raises(LayoutError, match="layout keys must be strings"):
        compile_layout({1: "x"})
    with pytest.raises(LayoutError, match=r"layout\.when: unsupported layout value of type set"):
        compile_layout({"when": {"a"}})
    with pytest.raises(LayoutError, match="a template must be a string"):
        compile_template(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "source",
    [
        "plain text, no actions",
        "{{/* a comment */}}",
        "{{- /* trimmed comment */ -}}",
        "{{ .Reason }}{{ .reason }}{{ .InvolvedObject.Name }}",
        '{{ if and .A (or .B .C) (not .D) }}{{ else if eq .Type "Warning" "Error" }}{{ end }}',
        "{{ with $o := .InvolvedObject }}{{ $o.Name }}{{ else with .Regarding }}{{ end }}",
        "{{ range $i, $e := .Items }}{{ $i }}{{ $e }}{{ else }}none{{ end }}",
        "{{ $x := 1 }}{{ $x = 2 }}{{ $x }}",
        '{{ printf "%s-%d" .Reason .Count }}{{ `raw {{ }} string` }}',
        "{{ 0x1F }}{{ 1_000 }}{{ -2.5e3 }}{{ 017 }}{{ nil | default 1 }}{{ true }}",
        '{{ (index .Metadata "labels").app }}',
        "{{ .Reason -}}\n\n{{- .Message }}",
    ],
)
def test_supported_constructs_compile(source: str) -> None:
    compile_template(source)


def test_multiline_action_compiles() -> None:
    template = compile_template('{{ printf "%s/%s"\n    .Namespace\n    .Name }}')
    event: dict[str, object] = {"metadata": {"namespace": "ns", "name": "n"}}
    assert template.render(event) == "ns/n"
