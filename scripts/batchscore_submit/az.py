"""The Azure CLI: command lines (argv lists, never a shell line), running
them, and masking whatever looks like a secret in what they print."""

import json
import logging
import re
import shlex
import subprocess
from typing import Any, Dict, List, NamedTuple, Optional

from . import Failure

log = logging.getLogger(__name__)

API_VERSION = "2025-09-01"
ARM = "https://management.azure.com"

_SECRET_PATTERNS = [
    # JSON Web Tokens (access and refresh tokens).
    (re.compile(r"eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*"), "<redacted>"),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1<redacted>"),
    # key=value, key: value and "key": "value" forms, SAS signatures included.
    (re.compile(r"(?i)\b((?:access|refresh|id)_?token|token|secret|client_?secret|password|passwd|pwd|"
                r"account_?key|shared_?access_?key|sas_?token|sig|signature|apikey|api_?key|"
                r"primary_?key|secondary_?key)"
                r"(\"?\s*[=:]\s*\"?)([^\s\"'&;,}]+)"), r"\1\2<redacted>"),
]


def redact(text: str) -> str:
    """Masks anything that looks like a token, key, password or SAS signature."""
    for pattern, repl in _SECRET_PATTERNS:
        text = pattern.sub(repl, text)
    return text


def first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line[6:].strip() if line.startswith("ERROR:") else line
    return "(no message)"


def indent(text: str, limit: int = 40) -> str:
    lines = redact(text).rstrip().splitlines()
    if len(lines) > limit:
        lines = lines[:limit] + ["... (%d more lines)" % (len(lines) - limit)]
    return "\n".join("    " + line for line in lines)


def is_not_found(err: str) -> bool:
    return bool(re.search(r"ResourceNotFound|not found|NotFound|could not be found|does not exist|\b404\b", err,
                          re.I))


class Commands:
    """az command lines for one workspace."""

    def __init__(self, resource_group: str, workspace: str, subscription: Optional[str]) -> None:
        self.rg, self.ws, self.sub = resource_group, workspace, subscription

    def scope(self) -> List[str]:
        s = ["--resource-group", self.rg, "--workspace-name", self.ws]
        return s + (["--subscription", self.sub] if self.sub else [])

    def ext_show(self) -> List[str]:
        return ["az", "extension", "show", "--name", "ml", "--output", "none"]

    def account_show(self) -> List[str]:
        cmd = ["az", "account", "show", "--query", "id", "--output", "tsv"]
        return cmd + (["--subscription", self.sub] if self.sub else [])

    # -- computes (az ml)
    def compute_show(self, name: str) -> List[str]:
        return ["az", "ml", "compute", "show", "--name", name] + self.scope() + ["--output", "json"]

    def compute_create(self, file: str) -> List[str]:
        return ["az", "ml", "compute", "create", "--file", file] + self.scope() + ["--no-wait", "--output", "json"]

    def compute_update(self, name: str, changes: Dict[str, Any], identity: Optional[str] = None,
                       identity_ids: Optional[List[str]] = None) -> List[str]:
        cmd = ["az", "ml", "compute", "update", "--name", name] + self.scope()
        flags = {"min_instances": "--min-instances", "max_instances": "--max-instances",
                 "idle_time_before_scale_down": "--idle-time-before-scale-down"}
        for key, flag in flags.items():
            if key in changes:
                cmd += [flag, str(changes[key])]
        if "identity" in changes:
            if identity == "system":
                cmd += ["--identity-type", "SystemAssigned"]
            else:
                cmd += ["--identity-type", "UserAssigned", "--user-assigned-identities", ",".join(identity_ids or [])]
        return cmd + ["--output", "json"]

    def list_sizes(self, location: Optional[str]) -> List[str]:
        loc = ["--location", location] if location else []
        return ["az", "ml", "compute", "list-sizes"] + loc + self.scope() + ["--output", "json"]

    def list_usage(self, location: Optional[str]) -> List[str]:
        loc = ["--location", location] if location else []
        return ["az", "ml", "compute", "list-usage"] + loc + self.scope() + ["--output", "json"]

    # -- ARM (az rest)
    def workspace_url(self, sub_id: Optional[str] = None) -> str:
        return ("%s/subscriptions/%s/resourceGroups/%s/providers/Microsoft.MachineLearningServices/workspaces/%s"
                "?api-version=%s" % (ARM, sub_id or "{subscriptionId}", self.rg, self.ws, API_VERSION))

    def compute_url(self, name: str, sub_id: Optional[str] = None) -> str:
        return self.workspace_url(sub_id).replace("?api-version", "/computes/%s?api-version" % name)

    def location_url(self, what: str, location: str, sub_id: Optional[str] = None) -> str:
        """vmSizes or usages of a region."""
        return ("%s/subscriptions/%s/providers/Microsoft.MachineLearningServices/locations/%s/%s?api-version=%s"
                % (ARM, sub_id or "{subscriptionId}", location, what, API_VERSION))

    def rest(self, method: str, url: str, body_file: Optional[str] = None) -> List[str]:
        cmd = ["az", "rest", "--method", method, "--url", url]
        return cmd + (["--body", "@" + body_file] if body_file else []) + ["--output", "json"]

    # -- jobs
    def job_create(self, file: str, name: str) -> List[str]:
        return ["az", "ml", "job", "create", "--file", file, "--name", name] + self.scope() + ["--output", "json"]

    def job_show(self, name: str) -> List[str]:
        return ["az", "ml", "job", "show", "--name", name] + self.scope() + ["--output", "json"]

    def job_stream(self, name: str) -> List[str]:
        return ["az", "ml", "job", "stream", "--name", name] + self.scope()

    def job_cancel(self, name: str) -> List[str]:
        return ["az", "ml", "job", "cancel", "--name", name] + self.scope()

    def job_logs(self, name: str, path: str) -> List[str]:
        """The job's default artifacts: its logs (user_logs/std_log_process_N.txt)."""
        return ["az", "ml", "job", "download", "--name", name, "--download-path", path] + self.scope()

    def job_download(self, name: str, path: str) -> List[str]:
        return ["az", "ml", "job", "download", "--name", name, "--output-name", "scores",
                "--download-path", path] + self.scope()


class Result(NamedTuple):
    rc: int
    out: str
    err: str


class Runner:
    """Runs az command lines; what they print comes back with secrets masked."""

    def run(self, cmd: List[str]) -> Result:
        log.debug("$ %s", shlex.join(cmd))
        try:
            r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as e:
            raise Failure("cannot run az: %s" % e)
        return Result(r.returncode, redact(r.stdout.decode("utf-8", "replace")),
                      redact(r.stderr.decode("utf-8", "replace")))

    def json(self, cmd: List[str], what: str) -> Any:
        """The JSON az printed; a Failure naming WHAT when the call fails."""
        r = self.run(cmd)
        if r.rc != 0:
            raise Failure("%s failed: %s" % (what, first_line(r.err)), detail=indent(r.err))
        return parse_json(r.out, what)

    def popen(self, cmd: List[str]) -> "subprocess.Popen[bytes]":
        log.debug("$ %s", shlex.join(cmd))
        try:
            return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        except OSError as e:
            raise Failure("cannot run az: %s" % e)


def parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(text) if text.strip() else {}
    except ValueError:
        raise Failure("%s: az did not answer JSON: %s" % (what, text.strip()[:300]))
