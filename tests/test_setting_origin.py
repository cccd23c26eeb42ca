"""Where a setting came from, as --show-config and the one-line errors name it."""

import click

from etl.cli import app
from etl.setting_origin import configurable, describe_click_error, setting_names


def test_settings_are_collects_options_but_config_and_show_config():
    names = setting_names(app)
    assert {"batch_size", "lake", "universe", "proxy", "quiet"} <= names
    assert not names & {"config_path", "show_config"}


def test_demo_shares_no_lake_with_the_settings():
    assert [p.name for p in configurable(app, app.commands["demo"])] == ["universe"]


def test_an_error_that_names_no_option_is_clicks_message():
    assert describe_click_error(click.UsageError("No such command 'colect'.")) == "No such command 'colect'"
