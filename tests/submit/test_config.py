"""config: the --config file and the workspace defaults."""

import argparse
import json

import pytest

from batchscore_submit import Failure
from batchscore_submit.cli import build_parser
from batchscore_submit.config import apply_workspace_defaults, az_cli_defaults, config_tokens


def blank():
    return argparse.Namespace(subscription=None, resource_group=None, workspace=None)


def test_point11_workspace_from_az_defaults(tmp_path):
    (tmp_path / "config").write_text("[defaults]\ngroup = my-rg\nworkspace = my-ws\nlocation = westeurope\n")
    env = {"AZURE_CONFIG_DIR": str(tmp_path)}
    assert az_cli_defaults(env) == {"group": "my-rg", "workspace": "my-ws", "location": "westeurope"}
    assert az_cli_defaults(dict(env, AZURE_DEFAULTS_GROUP="env-rg"))["group"] == "env-rg"
    o = blank()
    notes = apply_workspace_defaults(o, tmp_path / "nowhere", env)
    assert (o.resource_group, o.workspace) == ("my-rg", "my-ws") and len(notes) == 2


def test_point11_workspace_from_config_json(tmp_path):
    project = tmp_path / "project"
    (project / "sub").mkdir(parents=True)
    (project / ".azureml").mkdir()
    (project / ".azureml" / "config.json").write_text(json.dumps(
        {"subscription_id": "sub-id", "resource_group": "json-rg", "workspace_name": "json-ws"}))
    azdir = tmp_path / "az"
    azdir.mkdir()
    (azdir / "config").write_text("[defaults]\ngroup = az-rg\nworkspace = az-ws\n")
    o = blank()
    apply_workspace_defaults(o, project / "sub", {"AZURE_CONFIG_DIR": str(azdir)})
    assert (o.subscription, o.resource_group, o.workspace) == ("sub-id", "json-rg", "json-ws")
    # A workspace named on the command line is not mixed with config.json's.
    o = blank()
    o.workspace = "cli-ws"
    apply_workspace_defaults(o, project / "sub", {"AZURE_CONFIG_DIR": str(azdir)})
    assert (o.subscription, o.resource_group, o.workspace) == (None, "az-rg", "cli-ws")


def test_config_file_tokens(tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("# x\ntier = low_priority\nssh = false\nyes = true\nidentity-id = /a, /b\nenv = A=1,2\nenv = B=3\n")
    assert config_tokens(build_parser(), str(conf)) == [
        "--tier", "low_priority", "--no-ssh", "--yes", "--identity-id", "/a", "--identity-id", "/b",
        "--env", "A=1,2", "--env", "B=3"]
    conf.write_text("colour = blue\n")
    with pytest.raises(Failure, match="unknown setting 'colour'"):
        config_tokens(build_parser(), str(conf))
