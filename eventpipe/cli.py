"""The `eventpipe` command line.

`run` the pipeline, `replay` a range to one receiver, `spool stats`, `config validate`,
`config schema`, `demo` (a simulated cluster, no Kubernetes needed), `version`.
resmo's `eventpipe -conf=/data/config.yaml` form is translated to
`run --config` so existing Deployment manifests only need a new image.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence

import click
import orjson

from eventpipe import __version__
from eventpipe.config import Config, ConfigError, config_json_schema, load_config, parse_duration
from eventpipe.core.tasks import EXIT_CONFIG
from eventpipe.logs import setup_logging


def _load(path: str) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise click.ClickException(f"invalid config: {exc}") from exc
    except OSError as exc:
        raise click.ClickException(f"cannot read config {path}: {exc.strerror}") from exc


def _check_receivers(config: Config, path: str) -> None:
    """Build every receiver's sink once (compiling its layout); exit 1 naming a bad one. A
    config file's receivers are built as it loads; this is for the ones --sink added."""
    from eventpipe.config.loader import check_receivers

    try:
        check_receivers(config, None, path)
    except ConfigError as exc:
        raise click.ClickException(f"invalid config: {exc}") from exc


class CannotStart(click.ClickException):
    """`run` stops before starting: exit 2, as for every start-up problem (docs/exit-codes.md);
    `config validate` keeps exit 1 for the same finding."""

    exit_code = EXIT_CONFIG


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """eventpipe: every version of every Kubernetes Event, spooled durably, delivered."""


@cli.command()
@click.option("-c", "--config", "config_path", default=None, type=click.Path(dir_okay=False),
              help="Config file (YAML, a superset of kubernetes-event-exporter's).")
@click.option("--sink", "sinks", multiple=True, metavar="KIND:URL",
              help="A kube-eventer sink flag (dingtalk, wechat, webhook, kafka, elasticsearch); "
              "repeatable. Adds a receiver and its route (to --config's, if given). Without "
              "--config the spool is $EVENTPIPE_SPOOL or ./eventpipe-spool.db.")
@click.option("--kubeconfig", default=None, help="Kubeconfig path (else config, $KUBECONFIG, "
              "~/.kube/config, in-cluster).")
@click.option("--metrics-address", default=None,
              help="Override http address as HOST:PORT or :PORT (resmo's -metrics-address).")
def run(config_path: str | None, sinks: tuple[str, ...], kubeconfig: str | None,
        metrics_address: str | None) -> None:
    """Watch Events, spool them, deliver them to every receiver until SIGTERM."""
    if not config_path and not sinks:
        raise click.UsageError("give --config FILE, or kube-eventer style --sink flags")
    try:
        # Loading builds the file's receivers (layouts compile); the ones --sink adds are
        # built here, before the spool is opened, so a bad one is a line, not a traceback.
        config = _load(config_path) if config_path else None
        if sinks:
            config = _with_sinks(config, sinks, kubeconfig)
            _check_receivers(config, config_path or "--sink")
        assert config is not None
    except click.UsageError:
        raise  # exits 2 already
    except click.ClickException as exc:
        raise CannotStart(exc.message) from exc
    if metrics_address:
        host, _, port = metrics_address.rpartition(":")
        if not port.isdigit():
            raise click.BadParameter(f"{metrics_address!r} is not HOST:PORT or :PORT",
                                     param_hint="--metrics-address")
        http = config.http.model_copy(update={"port": int(port),
                                              "address": host or config.http.address})
        config = config.model_copy(update={"http": http})
    setup_logging(config.log_level, config.log_format,
                  dependencies=config.dependency_log_level)
    sys.exit(asyncio.run(_run(config, kubeconfig)))


def _with_sinks(config: Config | None, sinks: Sequence[str], kubeconfig: str | None) -> Config:
    """`config` plus the receivers and routes of kube-eventer `--sink` flags (exit 2 if bad)."""
    from eventpipe.config import kube_eventer as ke
    from eventpipe.configmap_bodies import read_configmap_bodies

    try:
        flags = [ke.parse_sink_flag(text, index=i) for i, text in enumerate(sinks, 1)]
        source = kubeconfig or (config.kubeconfig if config else None)
        flags = asyncio.run(read_configmap_bodies(flags, source))
        return ke.apply_sink_flags(config, flags, environ=os.environ)
    except ke.SinkFlagError as exc:
        raise click.UsageError(str(exc)) from exc


async def _run(config: Config, kubeconfig: str | None) -> int:
    from eventpipe.app import Pipeline  # heavy imports only for `run`
    from eventpipe.core.collector import tune_collector
    from eventpipe.fatal import exit_backstop

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    pipeline = Pipeline(config, kubeconfig=kubeconfig)
    tune_collector()  # the process runs one pipeline from here on: see eventpipe.core.collector
    code = await pipeline.run(stop)
    exit_backstop(code)
    return code


@cli.command()
@click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False))
@click.option("--receiver", required=True, help="The one receiver to re-send to.")
@click.option("--since", default=None, help="Events spooled within this duration, e.g. 2h.")
@click.option("--from-seq", type=int, default=None, help="Events from this spool seq on.")
@click.option("--to-seq", type=int, default=None, help="Stop after this seq.")
@click.option("--dead-letters", is_flag=True, help="Re-send this receiver's dead letters.")
def replay(config_path: str, receiver: str, since: str | None, from_seq: int | None,
           to_seq: int | None, dead_letters: bool) -> None:
    """Re-send a range of the spool to one receiver without touching the others."""
    from eventpipe.replay import replay as do_replay

    config = _load(config_path)
    setup_logging(config.log_level, "pretty")
    if sum(x is not None and x is not False for x in (since, from_seq, dead_letters or None)) != 1:
        raise click.UsageError("give exactly one of --since, --from-seq, --dead-letters")
    try:
        window = parse_duration(since) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from exc
    if all(r.name != receiver for r in config.receivers):
        known = ", ".join(r.name for r in config.receivers) or "none"
        raise click.BadParameter(f"no receiver named {receiver!r} in {config_path} "
                                 f"(have: {known})", param_hint="--receiver")
    result = asyncio.run(do_replay(config, receiver=receiver, since=window, from_seq=from_seq,
                                   to_seq=to_seq, dead_letters=dead_letters))
    click.echo(f"replayed to {receiver}: {result.sent} sent, {result.dead} dead-lettered, "
               f"{result.skipped} not routed to it")
    if result.dead:
        sys.exit(1)


@cli.command()
@click.option("-c", "--config", "config_path", default=None, type=click.Path(dir_okay=False))
@click.option("--spool", "spool_path", default=None, type=click.Path(dir_okay=False),
              help="Spool file (instead of --config).")
@click.option("--since", default=None, help="Only versions stored within this duration, e.g. 7d.")
@click.option("-n", "--namespace", default=None)
@click.option("-A", "--all-namespaces", is_flag=True, help="Every namespace (the default).")
@click.option("--for", "for_object", default=None, metavar="KIND/NAME",
              help="Events about one object, e.g. pod/web-0 or deploy/api.")
@click.option("--kind", default=None, help="Involved object kind (po, deploy, ... accepted).")
@click.option("--name", default=None, help="Involved object name.")
@click.option("--reason", default=None)
@click.option("--type", "event_type", default=None, help="Normal or Warning.")
@click.option("--limit", type=click.IntRange(min=0), default=500, show_default=True,
              help="Most recent N events (0: no limit).")
@click.option("--versions", is_flag=True, help="Every stored version, not only the latest.")
@click.option("-o", "--output", type=click.Choice(["table", "wide", "json", "yaml"]),
              default="table")
@click.option("-w", "--watch", is_flag=True, help="Then follow new versions until Ctrl-C.")
def events(config_path: str | None, spool_path: str | None, since: str | None,
           namespace: str | None, all_namespaces: bool, for_object: str | None,
           kind: str | None, name: str | None, reason: str | None, event_type: str | None,
           limit: int, versions: bool, output: str, watch: bool) -> None:
    """Events from the spool, like `kubectl get events`, as far back as it keeps them."""
    import time

    from eventpipe.history import Filters, HistoryError, canonical_kind, parse_for, show

    if bool(config_path) == bool(spool_path):
        raise click.UsageError("give one of --config or --spool")
    path = str(_load(config_path).spool.path) if config_path else str(spool_path)
    try:
        window = parse_duration(since) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from exc
    if for_object:
        if kind or name:
            raise click.UsageError("--for KIND/NAME replaces --kind and --name")
        try:
            kind, name = parse_for(for_object)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--for") from exc
    filters = Filters(since=None if window is None else time.time() - window,
                      namespace=None if all_namespaces else namespace,
                      kind=canonical_kind(kind) if kind else None, name=name, reason=reason,
                      type=event_type)
    try:
        asyncio.run(show(path, filters, output=output, limit=limit or None, versions=versions,
                         watch=watch, echo=click.echo))
    except HistoryError as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:  # Ctrl-C ends --watch; that is the normal way out
        pass


@cli.group()
def spool() -> None:
    """Inspect the spool."""


@spool.command("stats")
@click.option("-c", "--config", "config_path", default=None, type=click.Path(dir_okay=False))
@click.option("--spool", "spool_path", default=None, type=click.Path(dir_okay=False),
              help="Spool file (instead of --config).")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
def spool_stats(config_path: str | None, spool_path: str | None, output: str) -> None:
    """Counts, size, oldest/newest, per-receiver lag and dead letters."""
    from eventpipe.spool.report import render_stats, spool_stats_for

    if bool(config_path) == bool(spool_path):
        raise click.UsageError("give one of --config or --spool")
    config = _load(config_path) if config_path else None
    stats = asyncio.run(spool_stats_for(config=config, path=spool_path))
    if output == "json":
        click.echo(orjson.dumps(stats, option=orjson.OPT_INDENT_2, default=str).decode())
    else:
        click.echo(render_stats(stats))


@cli.group("config")
def config_group() -> None:
    """Check and describe the configuration."""


@config_group.command("validate")
@click.argument("path", type=click.Path(dir_okay=False))
def config_validate(path: str) -> None:
    """Load FILE as `run` would (schema, regexes, layouts); exit 1 naming the problem."""
    config = _load(path)  # builds every receiver, as `run` does
    click.echo(f"{path}: ok ({len(config.receivers)} receivers)")


@config_group.command("schema")
def config_schema() -> None:
    """Print the JSON Schema of the whole config."""
    click.echo(orjson.dumps(config_json_schema(), option=orjson.OPT_INDENT_2).decode())


@cli.command()
@click.option("--rate", type=click.FloatRange(min=0.1), default=20.0, show_default=True,
              help="Event versions per second the simulated cluster writes.")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default="eventpipe-demo",
              show_default=True, help="Folder for the kubeconfig, spool and events.jsonl.")
@click.option("--port", type=click.IntRange(0, 65535), default=2112, show_default=True,
              help="Port of /metrics (0 = any free port).")
@click.option("--receivers", "receivers_file", type=click.Path(dir_okay=False, exists=True),
              default=None, help="Config whose receivers and route are added (real sinks), "
              "e.g. examples/demo.yaml.")
@click.option("--duration", type=click.FloatRange(min=0), default=None,
              help="Stop after this many seconds (default: run until Ctrl-C).")
def demo(rate: float, directory: str, port: int, receivers_file: str | None,
         duration: float | None) -> None:
    """See eventpipe work without a cluster: a simulated cluster replays real Events."""
    from pathlib import Path

    from eventpipe.demo import DemoOptions, run_demo

    options = DemoOptions(directory=Path(directory), rate=rate, port=port, duration=duration,
                          receivers_file=Path(receivers_file) if receivers_file else None)
    if receivers_file:
        _load(receivers_file)  # builds every receiver: a bad layout stops here
    tty = sys.stdout.isatty()
    # On a terminal the summary block is redrawn in place and shows retries and lag, so
    # per-attempt warnings would only tear it; piped output keeps them.
    setup_logging("error" if tty else "warn", "pretty")
    try:
        code = asyncio.run(run_demo(options, out=sys.stdout, tty=tty))
    except ConfigError as exc:
        raise click.ClickException(f"invalid config: {exc}") from exc
    sys.exit(code)


@cli.command()
def version() -> None:
    """Print the version."""
    click.echo(f"eventpipe {__version__}")


def translate_resmo_args(argv: Sequence[str]) -> list[str]:
    """Map kubernetes-event-exporter's Go-style flags (`-conf=F`, `-conf F`, `-kubeconfig`,
    `-metrics-address`), or kube-eventer's (`--source=...`, `--sink=...`), onto `run`;
    anything else passes through."""
    args = list(argv)
    if args and args[0].lstrip("-").partition("=")[0] in ("source", "sink"):
        return _translate_kube_eventer_args(args)
    if not args or not args[0].startswith("-") or (
            args[0].lstrip("-").partition("=")[0] != "conf"):
        return args
    flags = {"conf": "--config", "kubeconfig": "--kubeconfig",
             "metrics-address": "--metrics-address"}
    out = ["run"]
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.lstrip("-").partition("=")
        if arg.startswith("-") and name in flags:
            if not eq:
                i += 1
                value = args[i] if i < len(args) else ""
            out += [flags[name], value]
        else:
            out.append(arg)
        i += 1
    return out


def _translate_kube_eventer_args(args: list[str]) -> list[str]:
    """kube-eventer's `--source=kubernetes:URL --sink=KIND:URL ...` as `run --sink ...`.

    `--source` is dropped: eventpipe finds the API server from the kubeconfig or in-cluster.
    """
    out = ["run"]
    i = 0
    while i < len(args):
        name, eq, value = args[i].lstrip("-").partition("=")
        if args[i].startswith("-") and name in ("source", "sink"):
            if not eq:
                i += 1
                value = args[i] if i < len(args) else ""
            if name == "sink":
                out += ["--sink", value]
        else:
            out.append(args[i])
        i += 1
    return out


def main() -> None:
    """Console entry point."""
    cli.main(args=translate_resmo_args(sys.argv[1:]), prog_name="eventpipe")


if __name__ == "__main__":
    main()
