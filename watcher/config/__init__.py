"""The YAML config: keys declared once, one-pass validation with FILE:LINE:COL issues,
frozen dataclasses, templates, token sources and the JSON Schema.

Core: imports only the stdlib, `yaml` and `watcher.errors`. Import public names from here.
"""

from __future__ import annotations

from watcher.config.diff import ConfigDiff, diff_configs, summary_table
from watcher.config.env import expand_env
from watcher.config.keys import (
    DEFAULT_STATE_DIR,
    DROP_MODES,
    HUB_KEYS,
    LOG_LEVELS,
    METRICS_KEYS,
    OBSERVER_KINDS,
    RESULTS_OPTION_KEYS,
    RULE_KEYS,
    SETTINGS_KEYS,
    SETTINGS_KEYS_KEYS,
    SOURCES,
    STATE_KEYS,
    TAGS_DAEMON_RESERVE,
    TAGS_MAX_TOTAL,
    TOP_KEYS,
    UPLOAD_KEYS,
    KeySpec,
)
from watcher.config.model import (
    Config,
    HubConfig,
    MetricsSettings,
    Rule,
    StateSettings,
    UploadSettings,
)
from watcher.config.parser import load_config, parse_config
from watcher.config.paths import (
    RESULTS_SUFFIX,
    clean_drop,
    input_dir_for,
    output_dir_for,
    rendered_name_problem,
    results_path_for,
)
from watcher.config.schema import json_schema
from watcher.config.templates import (
    DEFAULT_DATE_FORMAT,
    RESULTS_FIELDS,
    SEQ_FIELD,
    TEMPLATE_FIELDS,
    TemplatePart,
    parse_template,
    render_template,
    template_errors,
)
from watcher.config.tokens import CREDENTIAL_NAME, read_token, token_path, token_source

__all__ = [
    "CREDENTIAL_NAME",
    "DEFAULT_DATE_FORMAT",
    "DEFAULT_STATE_DIR",
    "DROP_MODES",
    "HUB_KEYS",
    "LOG_LEVELS",
    "METRICS_KEYS",
    "OBSERVER_KINDS",
    "RESULTS_FIELDS",
    "RESULTS_OPTION_KEYS",
    "RESULTS_SUFFIX",
    "RULE_KEYS",
    "SEQ_FIELD",
    "SETTINGS_KEYS",
    "SETTINGS_KEYS_KEYS",
    "SOURCES",
    "STATE_KEYS",
    "TAGS_DAEMON_RESERVE",
    "TAGS_MAX_TOTAL",
    "TEMPLATE_FIELDS",
    "TOP_KEYS",
    "UPLOAD_KEYS",
    "Config",
    "ConfigDiff",
    "HubConfig",
    "KeySpec",
    "MetricsSettings",
    "Rule",
    "StateSettings",
    "TemplatePart",
    "UploadSettings",
    "clean_drop",
    "diff_configs",
    "expand_env",
    "input_dir_for",
    "json_schema",
    "load_config",
    "output_dir_for",
    "parse_config",
    "parse_template",
    "read_token",
    "render_template",
    "rendered_name_problem",
    "results_path_for",
    "summary_table",
    "template_errors",
    "token_path",
    "token_source",
]
