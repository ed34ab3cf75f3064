"""Settings that do not come from the command line: the --config file, the
environment, and the workspace defaults the other Azure ML tools read
(`az configure --defaults` and an Azure ML config.json)."""

import argparse
import configparser
import json
import logging
import os
from pathlib import Path
from typing import Dict, List, Mapping, Optional

from . import EXIT_USAGE, Failure

log = logging.getLogger(__name__)

# Config-file booleans: option -> the option that turns it off (None: none).
FLAGS: Dict[str, Optional[str]] = {
    "ssh": "no-ssh", "no-ssh": "ssh", "node-public-ip": "no-node-public-ip",
    "no-node-public-ip": "node-public-ip", "keep-existing": None, "provision-only": None, "no-stream": None,
    "no-download": None, "use-rest": None, "dry-run": None, "verbose": None, "yes": None,
}
# Options that take several values, comma-separated in a config file (any
# option may also be given on several lines).
REPEATED = ("identity-id",)


def env_number(environ: Mapping[str, str], name: str, default: float) -> float:
    text = environ.get(name)
    if text is None or text == "":
        return default
    try:
        return float(text)
    except ValueError:
        raise Failure("environment variable %s=%r is not a number" % (name, text), EXIT_USAGE)


def config_tokens(parser: argparse.ArgumentParser, path: str) -> List[str]:
    """A config file (one 'option = value' a line) as command-line tokens,
    to be placed before the real ones so that those win."""
    known = {opt[2:] for action in parser._actions for opt in action.option_strings if opt.startswith("--")}
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise Failure("--config %s: %s" % (path, getattr(e, "strerror", None) or e), EXIT_USAGE)
    tokens: List[str] = []
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise Failure("--config %s line %d: expected 'option = value', got %r" % (path, n, line), EXIT_USAGE)
        key, value = (x.strip() for x in line.split("=", 1))
        key = key.lstrip("-").replace("_", "-").lower()
        if key in ("config", "help") or key not in known:
            raise Failure("--config %s line %d: unknown setting %r" % (path, n, key), EXIT_USAGE)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if key in FLAGS:
            truth = value.lower()
            if truth in ("1", "true", "yes", "on"):
                tokens.append("--" + key)
            elif truth in ("0", "false", "no", "off"):
                if FLAGS[key]:
                    tokens.append("--" + str(FLAGS[key]))
            else:
                raise Failure("--config %s line %d: %s wants true or false, got %r" % (path, n, key, value),
                              EXIT_USAGE)
        elif key in REPEATED:
            for item in value.split(","):
                if item.strip():
                    tokens += ["--" + key, item.strip()]
        else:
            tokens += ["--" + key, value]
    return tokens


def az_cli_defaults(environ: Mapping[str, str]) -> Dict[str, str]:
    """What `az configure --defaults group=... workspace=... location=...`
    stored (AZURE_CONFIG_DIR/config, section [defaults]), with the
    AZURE_DEFAULTS_* environment variables winning, as in az itself."""
    found: Dict[str, str] = {}
    config_dir = environ.get("AZURE_CONFIG_DIR") or os.path.join(os.path.expanduser("~"), ".azure")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(os.path.join(config_dir, "config"), encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as e:
        log.warning("ignoring the az configuration in %s: %s", config_dir, e)
    if parser.has_section("defaults"):
        for key in ("group", "workspace", "location"):
            value = parser.get("defaults", key, fallback="").strip()
            if value:
                found[key] = value
    for key in ("group", "workspace", "location"):
        value = environ.get("AZURE_DEFAULTS_" + key.upper(), "").strip()
        if value:
            found[key] = value
    return found


def find_config_json(start: Path) -> Optional[Path]:
    """The Azure ML config.json the SDK's MLClient.from_config() would use:
    config.json or .azureml/config.json in START or the nearest parent."""
    for folder in [start] + list(start.parents):
        for candidate in (folder / "config.json", folder / ".azureml" / "config.json"):
            if candidate.is_file():
                return candidate
    return None


def read_config_json(path: Path) -> Dict[str, str]:
    """subscription_id, resource_group and workspace_name from a config.json;
    {} when it is not an Azure ML one."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        log.warning("ignoring %s: %s", path, e)
        return {}
    if not isinstance(data, dict):
        return {}
    keys = ("subscription_id", "resource_group", "workspace_name")
    return {k: str(data[k]) for k in keys if isinstance(data.get(k), str) and data[k].strip()}


def apply_workspace_defaults(opts: argparse.Namespace, cwd: Path, environ: Mapping[str, str]) -> List[str]:
    """Fills the workspace options the command line and --config left out:
    first from an Azure ML config.json (the project's own; only when neither
    the resource group nor the workspace was given), then from az's defaults
    (per value, as az does). Returns a note per value taken, for the log."""
    notes: List[str] = []
    # A config.json names one workspace: taken whole, or not at all.
    path = find_config_json(cwd) if not (opts.resource_group or opts.workspace) else None
    if path is not None:
        found = read_config_json(path)
        for key, attr in (("subscription_id", "subscription"), ("resource_group", "resource_group"),
                          ("workspace_name", "workspace")):
            if key in found and not getattr(opts, attr):
                setattr(opts, attr, found[key])
                notes.append("%s %s from %s" % (attr.replace("_", " "), found[key], path))
    defaults = az_cli_defaults(environ)
    for key, attr in (("group", "resource_group"), ("workspace", "workspace")):
        if key in defaults and not getattr(opts, attr):
            setattr(opts, attr, defaults[key])
            notes.append("%s %s from az's defaults (az configure --defaults)" % (attr.replace("_", " "),
                                                                                 defaults[key]))
    return notes
