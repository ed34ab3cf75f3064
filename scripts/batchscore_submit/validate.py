"""Every check made before any call to Azure. validate() reports all the
problems at once and fills in the values the other modules derive from the
options (normalised tier and identity, the --env pairs, the input's dataset)."""

import argparse
import os
import re
from typing import List, Optional, Tuple

TIERS = ("dedicated", "low_priority")
IDENTITIES = ("none", "system", "user")
BIND_POLICIES = ("none", "core", "socket", "numa", "hwthread")
# Names the service or its clients keep for themselves.
RESERVED_NAMES = ("amlcompute", "local", "containerinstance", "serverless", "datafactory")
# Azure ML's documented limits disagree (2-16 in the ARM table, 3-24 in the
# compute docs); 3-16 satisfies both.
NAME_MIN, NAME_MAX = 3, 16
MAX_MPI_NODES = 100  # nodes in a single MPI run on AmlCompute
# Characters that would not survive the double quotes around a path in the
# job's command: Azure ML pastes mount paths (which end in the file's name)
# and direct URIs into the command before the shell reads it.
UNSAFE_IN_COMMAND = set('"$`\\\n\r')
URI_PREFIXES = ("azureml://", "azureml:", "https://", "http://", "wasbs://", "wasb://", "abfss://", "abfs://",
                "adl://")
# A registered model: azureml:NAME:VERSION, azureml:NAME@latest, or a registry's.
REGISTERED_MODEL = re.compile(r"^(?:azureml:[A-Za-z0-9_.-]+(?::[A-Za-z0-9_.-]+|@latest)"
                              r"|azureml://registries/[^/]+/models/[^/]+/(?:versions/[^/]+|labels/[^/]+))$")
REGISTERED_ENVIRONMENT = re.compile(r"^azureml:[A-Za-z0-9_.-]+(?::[A-Za-z0-9_.-]+|@latest)$")
SECRET_LOOKING = re.compile(r"(?i)(pass|secret|token|key|sas|credential|pwd)")
GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def cluster_name_problems(name: str) -> List[str]:
    """Every rule the compute name breaks, as messages; [] when it is valid."""
    problems = []
    if not NAME_MIN <= len(name) <= NAME_MAX:
        problems.append("must be %d to %d characters long (it has %d)" % (NAME_MIN, NAME_MAX, len(name)))
    if not name or not ("a" <= name[0].lower() <= "z"):
        problems.append("must start with a letter")
    bad = sorted(set(c for c in name if not re.match(r"[A-Za-z0-9-]", c)))
    if bad:
        problems.append("may contain only letters, digits and hyphens (not %s)" % " ".join(repr(c) for c in bad))
    if any(c == "-" and not re.search(r"[A-Za-z]", name[i + 1:]) for i, c in enumerate(name)):
        problems.append("needs a letter somewhere after every hyphen (test-a0 and test-0a are valid; "
                        "test-, test-0 and cpu-cluster-1 are not)")
    if name.lower() in RESERVED_NAMES:
        problems.append("is reserved (%s are)" % ", ".join(RESERVED_NAMES))
    return problems


def is_uri(path: str) -> bool:
    return path.startswith(URI_PREFIXES)


def is_registered_model(ref: str) -> bool:
    return bool(REGISTERED_MODEL.match(ref))


def split_input(spec: str) -> Tuple[str, Optional[str]]:
    """PATH[:DATASET] -> (path, dataset or None). For a local path the last
    colon separates the dataset, as in batchscore (unless the whole value is
    an existing file); for a URI or data asset only a last part that starts
    with a single '/' is a dataset: azureml://.../f.h5:/features."""
    head, sep, tail = spec.rpartition(":")
    if not sep:
        return spec, None
    if is_uri(spec):
        if tail.startswith("/") and not tail.startswith("//"):
            return head, tail
        return spec, None
    if os.path.exists(spec):
        return spec, None
    return head, tail


def check_path_for_command(value: str, option: str, errors: List[str]) -> None:
    """A file or URI whose name reaches the job's command line must not carry
    characters that would break out of its quotes there."""
    if UNSAFE_IN_COMMAND & set(value if is_uri(value) else os.path.basename(value)):
        errors.append("%s %r: rename it without \" $ ` \\ or line breaks: the job's command line sees it "
                      "under that name" % (option, value))


def check_local_file(path: str, option: str, errors: List[str]) -> None:
    if not os.path.isfile(path):
        errors.append("%s %s: no such file (give a local file or an azureml:// URI)" % (option, path))
    else:
        check_path_for_command(path, option, errors)


def _need(value: Optional[str], option: str, errors: List[str]) -> bool:
    if value is None or str(value).strip() == "":
        errors.append("%s is required" % option)
        return False
    return True


def _check_workspace(opts: argparse.Namespace, errors: List[str]) -> None:
    _need(opts.resource_group, "--resource-group (or az configure --defaults group=RG)", errors)
    _need(opts.workspace, "--workspace (or az configure --defaults workspace=WS)", errors)
    if _need(opts.cluster, "--cluster", errors):
        for problem in cluster_name_problems(opts.cluster):
            errors.append("--cluster %r: the name %s" % (opts.cluster, problem))
    if opts.subscription is not None and not opts.subscription.strip():
        errors.append("--subscription is empty")


def _check_sizes(opts: argparse.Namespace, errors: List[str]) -> None:
    """The cluster's size settings; None means 'not asked for' (point of
    keeping an existing cluster as it is)."""
    if opts.tier is not None:
        tier = opts.tier.strip().lower()
        if tier not in TIERS:
            hint = " (it is spelled low_priority)" if re.sub(r"[-_ ]", "", tier) == "lowpriority" else ""
            errors.append("unknown --tier %r: use dedicated or low_priority%s" % (opts.tier, hint))
        else:
            opts.tier = tier
    if opts.vm_size is not None and not re.match(r"^[A-Za-z][A-Za-z0-9_]*$", opts.vm_size):
        errors.append("--vm-size %r does not look like a VM size such as Standard_D4s_v3" % opts.vm_size)
    if opts.min_nodes is not None and opts.min_nodes < 0:
        errors.append("--min-nodes %d: must be 0 or more" % opts.min_nodes)
    if opts.max_nodes is not None and opts.max_nodes < 1:
        errors.append("--max-nodes %d: must be at least 1" % opts.max_nodes)
    if None not in (opts.min_nodes, opts.max_nodes) and opts.min_nodes > opts.max_nodes:
        errors.append("--min-nodes %d is more than --max-nodes %d" % (opts.min_nodes, opts.max_nodes))
    if opts.idle_seconds is not None and opts.idle_seconds < 0:
        errors.append("--idle-seconds %d: must be 0 or more" % opts.idle_seconds)
    if opts.nodes < 1:
        errors.append("--nodes %d: a job needs at least 1 node" % opts.nodes)
    elif opts.max_nodes is not None and opts.nodes > opts.max_nodes:
        errors.append("--nodes %d is more than --max-nodes %d: the job could never start"
                      % (opts.nodes, opts.max_nodes))
    elif opts.nodes > MAX_MPI_NODES:
        errors.append("--nodes %d: an MPI job on AmlCompute may use at most %d nodes" % (opts.nodes, MAX_MPI_NODES))
    if opts.ranks_per_node < 1:
        errors.append("--ranks-per-node %d: must be at least 1 process per node" % opts.ranks_per_node)


def _check_identity(opts: argparse.Namespace, errors: List[str]) -> None:
    if opts.identity is None and opts.identity_id:
        opts.identity = "user"
    if opts.identity is None:
        return
    identity = opts.identity.strip().lower()
    if identity not in IDENTITIES:
        errors.append("unknown --identity %r: use none, system or user" % opts.identity)
    elif identity == "user" and not opts.identity_id:
        errors.append("--identity user needs --identity-id RESOURCE_ID (the user-assigned identity's resource id)")
    elif identity != "user" and opts.identity_id:
        errors.append("--identity-id is only for --identity user (a %s identity has no id to give)" % identity)
    opts.identity = identity
    for rid in opts.identity_id:
        if not re.match(r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/"
                        r"microsoft\.managedidentity/userassignedidentities/[^/]+$", rid, re.I):
            errors.append("--identity-id %r is not a user-assigned identity resource id (/subscriptions/SUB/"
                          "resourceGroups/RG/providers/Microsoft.ManagedIdentity/userAssignedIdentities/NAME)" % rid)


def _check_ssh(opts: argparse.Namespace, errors: List[str]) -> None:
    opts.ssh_key_value = None
    if opts.ssh:
        if not opts.ssh_key:
            errors.append("--ssh needs --ssh-key FILE (an SSH public key; passwords are not supported)")
        else:
            try:
                with open(opts.ssh_key, encoding="utf-8") as f:
                    key = f.read().strip()
            except (OSError, UnicodeDecodeError) as e:
                errors.append("--ssh-key %s: %s" % (opts.ssh_key, getattr(e, "strerror", None) or e))
            else:
                if "PRIVATE KEY" in key:
                    errors.append("--ssh-key %s is a private key: give the public one (.pub)" % opts.ssh_key)
                elif not re.match(r"^(ssh-|ecdsa-|sk-)", key):
                    errors.append("--ssh-key %s does not look like an SSH public key" % opts.ssh_key)
                else:
                    opts.ssh_key_value = key
        if not re.match(r"^[a-z_][a-z0-9_-]{0,31}$", opts.admin_username or ""):
            errors.append("--admin-username %r is not a valid user name" % opts.admin_username)
    elif opts.ssh_key:
        errors.append("--ssh-key is only used with --ssh (SSH is off by default)")


def _check_network(opts: argparse.Namespace, errors: List[str]) -> None:
    subnet_is_id = bool(opts.subnet) and opts.subnet.lower().startswith("/subscriptions/")
    if opts.vnet and not opts.subnet:
        errors.append("--vnet needs --subnet NAME")
    if opts.subnet and subnet_is_id and opts.vnet:
        errors.append("--subnet is a resource id, which names its network: leave out --vnet")
    if opts.subnet and not subnet_is_id and not opts.vnet:
        errors.append("--subnet %r needs --vnet NAME (or give the subnet's full resource id)" % opts.subnet)
    if subnet_is_id and not re.match(r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.network/"
                                     r"virtualnetworks/[^/]+/subnets/[^/]+$", opts.subnet, re.I):
        errors.append("--subnet %r is not a subnet resource id" % opts.subnet)
    if opts.node_public_ip is False and not opts.subnet:
        errors.append("--no-node-public-ip needs --subnet: nodes without public IPs reach Azure through a "
                      "virtual network")


def _check_job(opts: argparse.Namespace, errors: List[str], warnings: List[str]) -> None:
    if opts.run_name is not None and not re.match(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,199}$", opts.run_name):
        errors.append("--run-name %r: use letters, digits, '-' and '_' (up to 200, starting with a letter "
                      "or digit)" % opts.run_name)
    if opts.max_resubmits < 0:
        errors.append("--max-resubmits %d: must be 0 or more" % opts.max_resubmits)
    if opts.timeout_seconds is not None and opts.timeout_seconds < 1:
        errors.append("--timeout-seconds %d: must be at least 1" % opts.timeout_seconds)
    if opts.poll_seconds <= 0:
        errors.append("--poll-seconds must be more than 0")
    if opts.stuck_seconds < 0 or opts.provision_timeout <= 0:
        errors.append("--stuck-seconds must be 0 or more and --provision-timeout more than 0")
    if not re.match(r"^[A-Za-z0-9_]+$", opts.datastore or ""):
        errors.append("--datastore %r is not a datastore name" % opts.datastore)
    opts.env_pairs = {}
    for item in opts.env:
        key, sep, value = item.partition("=")
        if not sep or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            errors.append("--env %r: expected KEY=VALUE with KEY made of letters, digits and _" % item)
        else:
            opts.env_pairs[key] = value
    if opts.env_pairs:
        secretish = [k for k in opts.env_pairs if SECRET_LOOKING.search(k)]
        warnings.append("--env values are stored in the job's definition: anyone who can read the workspace "
                        "sees them (studio, az ml job show). Do not pass secrets that way%s"
                        % ("; %s looks like one" % ", ".join(secretish) if secretish else ""))
    _check_image(opts, errors)


def default_source() -> Optional[str]:
    """The source tree this helper runs from (scripts/ in it), to build the
    image from; None for an installed helper, which has none."""
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
    return top if os.path.isfile(os.path.join(top, "configure.ac")) else None


def _check_image(opts: argparse.Namespace, errors: List[str]) -> None:
    if opts.environment is not None and not REGISTERED_ENVIRONMENT.match(opts.environment):
        errors.append("--environment %r: give a registered environment as azureml:NAME:VERSION or "
                      "azureml:NAME@latest" % opts.environment)
    chosen = [o for o, v in (("--environment", opts.environment), ("--image", opts.image),
                             ("--base-image", opts.base_image), ("--source", opts.source)) if v is not None]
    if len(chosen) > 1 and ("--environment" in chosen or "--image" in chosen):
        errors.append("%s: choose one (a registered environment or a prebuilt image is used as it is; "
                      "--base-image and --source are for building one)" % " and ".join(chosen))
    for option, value in (("--image", opts.image), ("--base-image", opts.base_image)):
        if value is not None and not re.match(r"^[A-Za-z0-9][A-Za-z0-9./:@_-]*$", value):
            errors.append("%s %r is not an image reference" % (option, value))
    if (opts.source is None and opts.environment is None and opts.image is None and not opts.provision_only
            and default_source() is None):
        errors.append("no batchscore source next to this installed batchscore-submit to build the image from: give "
                      "--source DIR|TARBALL (a source tree or release tarball), --image or --environment")
    if opts.source is not None:
        if os.path.isdir(opts.source):
            if not os.path.isfile(os.path.join(opts.source, "configure.ac")):
                errors.append("--source %s: no configure.ac there; give batchscore's source tree" % opts.source)
        elif not (os.path.isfile(opts.source) and opts.source.endswith((".tar.gz", ".tgz"))):
            errors.append("--source %s: give a source tree or a .tar.gz tarball" % opts.source)


def _check_data(opts: argparse.Namespace, errors: List[str]) -> None:
    opts.dataset = "/features"
    opts.input_path = None
    if _need(opts.model, "--model", errors):
        if is_uri(opts.model):
            check_path_for_command(opts.model, "--model", errors)
        else:
            check_local_file(opts.model, "--model", errors)
    if opts.model_file is not None:
        if not opts.model or not is_registered_model(opts.model):
            errors.append("--model-file is for a registered model (--model azureml:NAME:VERSION) stored as a "
                          "folder: the file inside it")
        elif opts.model_file.startswith("/") or ".." in opts.model_file.split("/"):
            errors.append("--model-file %r: give a path inside the model's folder" % opts.model_file)
        else:
            check_path_for_command(opts.model_file, "--model-file", errors)
    if _need(opts.input, "--input", errors):
        path, dataset = split_input(opts.input)
        opts.input_path = path
        if dataset is not None:
            if not dataset:
                errors.append("--input %r: the dataset after ':' is empty" % opts.input)
            opts.dataset = dataset
        if is_uri(path):
            check_path_for_command(path, "--input", errors)
        else:
            check_local_file(path, "--input", errors)
    if opts.output_path is not None:
        if not opts.output_path.startswith("azureml://"):
            errors.append("--output-path %r: give an azureml://datastores/NAME/paths/PATH/ URI" % opts.output_path)
        check_path_for_command(opts.output_path, "--output-path", errors)
    for arg in opts.batchscore_args:
        name = arg.split("=", 1)[0]
        if name in ("--model", "--input", "--output", "--write-mode", "--resume"):
            errors.append("batchscore option %s after '--' is set by batchscore-submit (the job always runs "
                          "with --resume into the run's output folder)" % name)


def validate(opts: argparse.Namespace) -> Tuple[List[str], List[str]]:
    """(errors, warnings) of the request, before any cloud call."""
    errors: List[str] = []
    warnings: List[str] = []
    _check_workspace(opts, errors)
    _check_sizes(opts, errors)
    _check_identity(opts, errors)
    _check_ssh(opts, errors)
    _check_network(opts, errors)
    _check_job(opts, errors, warnings)
    if opts.bind_ranks not in BIND_POLICIES:
        errors.append("unknown --bind-ranks %r: use %s" % (opts.bind_ranks, ", ".join(BIND_POLICIES)))
    if not opts.provision_only:
        _check_data(opts, errors)
    return errors, warnings
