"""Where each setting came from (a flag, ETL_<NAME>, the settings file, or the default), for --show-config
and for error messages that name that place."""

from pathlib import Path

import click
from click.core import ParameterSource

from etl.config import to_redacted_url
from etl.render import render_rows
from etl.settings_file import load_settings_file

# The command whose options are the settings; the others share some of them (--lake, --universe).
SETTINGS_COMMAND = "collect"
# Options of that command that are no setting.
_NOT_SETTINGS = {"config_path", "show_config"}
# ctx.meta key: where the settings click fell back on (its default_map) were read.
_SETTINGS_FILE_LABEL = "etl.settings_file"


def setting_names(app: click.Group) -> set[str]:
    """What ETL_<NAME> and a settings file may set: collect's options, by name."""
    params = app.commands[SETTINGS_COMMAND].params
    return {p.name for p in params if isinstance(p, click.Option) and p.name} - _NOT_SETTINGS


def configurable(app: click.Group, command: click.Command) -> list[click.Parameter]:
    """A command's options that settings set; not demo's --lake, so its synthetic data stays out of a real
    lake."""
    names = setting_names(app)
    return [p for p in command.params if p.name in names and (command.name, p.name) != ("demo", "lake")]


def read_settings_from_env(app: click.Group) -> None:
    """ETL_<NAME> sets the option of that name on every command that shares it (ETL_LAKE for summary too)."""
    for command in app.commands.values():
        for param in configurable(app, command):
            param.envvar = f"ETL_{(param.name or '').upper()}"


def read_settings(ctx: click.Context, config_path: Path | None) -> None:
    """Hand the settings file to click as the defaults it falls back on after flags and ETL_<NAME>
    (default_map); a file that is not one raises ConfigError."""
    app = _to_app(ctx)
    settings_file = load_settings_file(config_path, setting_names(app))
    if settings_file is not None:
        names = {p.name for p in configurable(app, ctx.command)}
        ctx.default_map = {k: v for k, v in settings_file.values.items() if k in names}
        ctx.meta[_SETTINGS_FILE_LABEL] = settings_file.label


def describe_settings(ctx: click.Context) -> str:
    """For --show-config: each setting, its value and where it came from, a line each."""
    rows = [
        {"setting": p.name, "value": _to_shown(p.name, ctx.params[p.name or ""]), "from": find_origin(ctx, p)}
        for p in configurable(_to_app(ctx), ctx.command)
    ]
    return render_rows(rows, "table")


def describe_click_error(exc: click.ClickException) -> str:
    """click's message; a bad value from ETL_<NAME> or the settings file names that place, not the flag."""
    ctx, param = getattr(exc, "ctx", None), getattr(exc, "param", None)
    origin = find_origin(ctx, param) if ctx is not None and param is not None else "flag"
    if param is None or origin in ("flag", "default"):
        return exc.format_message().rstrip(".")
    if origin.startswith("env "):
        return f"{origin}: {exc.message.rstrip('.')}; fix or unset it"
    return f"{origin}: {param.name}: {exc.message.rstrip('.')}; fix or remove it"


def find_origin(ctx: click.Context, param: click.Parameter) -> str:
    """Where an option's value came from: flag, env ETL_<NAME>, the settings file, or default."""
    source = ctx.get_parameter_source(param.name or "")
    if source is ParameterSource.COMMANDLINE:
        return "flag"
    if source is ParameterSource.ENVIRONMENT:
        return f"env {param.envvar}"
    if source is ParameterSource.DEFAULT_MAP:
        return ctx.meta[_SETTINGS_FILE_LABEL]
    return "default"


def _to_shown(name: str | None, value: object) -> str:
    """A setting's value as --show-config prints it: a proxy's credentials are never shown."""
    if value is None:
        return ""
    return to_redacted_url(str(value)) if name == "proxy" else str(value)


def _to_app(ctx: click.Context) -> click.Group:
    """The group the command runs under: it holds collect, whose options are the settings."""
    root = ctx.find_root().command
    if not isinstance(root, click.Group):
        raise TypeError(f"{root.name} is not a group of commands; settings are read under the CLI's group")
    return root
