"""`digest serve` and `digest studio`: the two web apps."""

from __future__ import annotations

from datetime import date

import click

from pipeline.interfaces.cli.base import Context, cli, date_option, pass_ctx


@cli.command()
@click.option("--host", help="Address to listen on (default: web.host).")
@click.option("--port", type=click.IntRange(0, 65535),
              help="Port to listen on (default: web.port; 0 = any free port).")
@pass_ctx
def serve(ctx: Context, host: str | None, port: int | None) -> None:
    """Serve unsubscribe/subscribe and site/ over HTTP."""
    from pipeline.interfaces import serve as web
    from pipeline.interfaces.guard import check_host

    settings = ctx.settings
    settings.secret  # noqa: B018 - fail now, not on the first unsubscribe, if it is unset
    # A name that does not resolve fails now, in one line, not as a traceback (or, for the
    # mail server, only in the log of the first confirmation mail).
    check_host(host or settings.web.host, "--host" if host else "web.host")
    if settings.delivery.transport == "smtp":
        check_host(settings.smtp.host, "smtp.host")
    server = web.make_server(  # --port 0: a free port chosen by the OS, not web.port
        settings, host or settings.web.host, settings.web.port if port is None else port,
        ctx.runtime(),
    )
    click.echo(f"serving on http://{host or settings.web.host}:{server.effective_port}", err=True)
    server.run()


@cli.command()
@date_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; one other than loopback needs DIGEST_STUDIO_PASSWORD.")
@click.option("--port", type=int, default=0, help="Port to listen on (default: any free one).")
@click.option("--to", metavar="ADDR", help="Where test copies go (default: arxiv.contact).")
@pass_ctx
def studio(ctx: Context, day: date | None, host: str, port: int, to: str | None) -> None:
    """Pick, annotate, preview and approve the day's issue in a browser."""
    from pipeline.interfaces import studio as studio_app

    studio_app.serve_studio(ctx.settings, ctx.day(day), ctx.runtime(), host=host, port=port,
                            to=to, ready=lambda line: click.echo(line, err=True))
