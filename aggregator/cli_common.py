"""What every command module of the CLI shares: exit codes, error reporting, opening the
aggregator, JSON output."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NoReturn

import click

from aggregator.core import Aggregator
from aggregator.errors import AggregatorError, ConfigError, NotFoundError
from aggregator.logs import setup as setup_logs

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn the aggregator's errors into messages and exit codes."""
    try:
        yield
    except ConfigError as exc:
        for issue in exc.issues:
            click.echo(f"error: {issue}", err=True)
        click.echo(f"{len(exc.issues)} config error(s); nothing was changed.", err=True)
        sys.exit(EXIT_USAGE)
    except NotFoundError as exc:
        _fail(str(exc))
    except AggregatorError as exc:
        _fail(str(exc), EXIT_FAILED)


def _open(ctx: click.Context) -> Aggregator:
    with _errors():
        agg = Aggregator.open(ctx.obj["config"])
    ctx.call_on_close(agg.close)
    level = ctx.obj.get("log_level") or ("warning" if sys.stderr.isatty() else "info")
    setup_logs(ctx.obj.get("log_format") or agg.config.settings.log_format, level)
    return agg


def _dumps(value: Any) -> str:
    def default(o: Any) -> Any:
        if isinstance(o, datetime):
            return o.isoformat()
        if hasattr(o, "__dataclass_fields__"):
            return {k: getattr(o, k) for k in o.__dataclass_fields__}
        raise TypeError(type(o).__name__)
    return json.dumps(value, default=default, ensure_ascii=False, indent=2)


