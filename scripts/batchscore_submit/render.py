"""The generated files: the cluster's compute.yml (and its az rest body), the
job's job.yml with its command, the image's Dockerfile and source tarball,
all written into a private work folder; and the --dry-run plan."""

import argparse
import datetime
import errno
import gzip
import io
import os
import re
import secrets
import shlex
import shutil
import stat
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

from . import EXIT_USAGE, PROG, Failure
from .validate import default_source, is_registered_model, is_uri

COMPUTE_SCHEMA = "https://azuremlschemas.azureedge.net/latest/amlCompute.schema.json"
JOB_SCHEMA = "https://azuremlschemas.azureedge.net/latest/commandJob.schema.json"
# Azure ML's Open MPI images: Open MPI 4.1 built into /usr/local, which is
# what Azure ML's mpirun runs. The CUDA one (a CUDA devel image) for GPU sizes.
CPU_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
GPU_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-cuda11.8-cudnn8-ubuntu22.04:latest"
HDF5_VERSION = "1.14.6"
HDF5_SHA256 = "e4defbac30f50d64e1556374aa49e574417c9e72c6b1de7a4ff88c4b1bea6e9b"
# A new cluster's settings where the options leave them out.
NEW_CLUSTER = {"size": "Standard_D4s_v3", "tier": "dedicated", "min_instances": 0, "max_instances": 4,
               "idle_time_before_scale_down": 120}
MADE_BY = {"made-by": PROG}  # the tag that marks a cluster this helper created
DESCRIPTION = "batchscore MPI cluster"
# What the image build needs from the source tree; nothing else goes into
# the tarball, so the image is rebuilt only when one of these changes.
BUILD_FILES = ("configure.ac", "Makefile.am", "scripts/build")
BUILD_DIRS = ("m4/", "src/", "kernels/")
# The line each rank's command prints when batchscore ends (follow.py reads it).
STATUS_LINE = "batchscore-submit: rank {rank}: batchscore exit status {code}"


def is_gpu_size(size: str) -> bool:
    """Azure's GPU VM sizes are the N series (NC, ND, NV...)."""
    return bool(re.match(r"(?i)^standard_n", size or ""))


def yaml_text(doc: Dict[str, Any]) -> str:
    """YAML through a YAML library: every string that another YAML 1.1 type
    could claim (2024-01-01, 1:30, yes, 0x1F, ~) comes out quoted."""
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True, width=4096)


def iso_duration(seconds: int) -> str:
    """300 -> PT5M, 5400 -> PT1H30M, as the ARM API wants idle times."""
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    out = "PT" + ("%dH" % h if h else "") + ("%dM" % m if m else "") + ("%dS" % s if s else "")
    return out if out != "PT" else "PT0S"


def parse_iso_duration(text: Optional[str]) -> Optional[int]:
    m = re.match(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$", text or "")
    if not m:
        return None
    d, h, mi, s = (float(x) if x else 0 for x in m.groups())
    return int(d * 86400 + h * 3600 + mi * 60 + s)


def read_mpi_params(path: Path) -> List[Tuple[str, str]]:
    """scripts/mpi-params: one 'NAME VALUE' a line, # comments."""
    params = []
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2 or not re.match(r"^[A-Za-z0-9_]+$", parts[0]):
                raise Failure("%s line %d: expected 'NAME VALUE', got %r" % (path, n, raw.strip()))
            params.append((parts[0], parts[1]))
    return params


def shell_word(arg: str) -> str:
    """Quotes one word of the job's shell command. ${{...}} placeholders stay
    as they are (Azure ML replaces them with paths before the shell runs),
    inside double quotes so that a path with spaces stays one word."""
    if "${{" not in arg:
        return shlex.quote(arg)
    out = []
    for part in re.split(r"(\$\{\{[A-Za-z0-9_.]+\}\})", arg):
        out.append(part if part.startswith("${{") else re.sub(r'(["$`\\])', r"\\\1", part))
    return '"' + "".join(out) + '"'


def new_cluster_settings(opts: argparse.Namespace) -> Dict[str, Any]:
    """A new cluster: what was asked, the defaults for the rest (at least as
    many nodes as the job wants)."""
    s = dict(NEW_CLUSTER)
    asked = {"size": opts.vm_size, "tier": opts.tier, "min_instances": opts.min_nodes,
             "max_instances": opts.max_nodes, "idle_time_before_scale_down": opts.idle_seconds}
    s.update({k: v for k, v in asked.items() if v is not None})
    if opts.max_nodes is None:
        s["max_instances"] = max(s["max_instances"], opts.nodes, s["min_instances"])
    return s


class WorkDir:
    """The folder of generated files: private (0700), never reused, files
    created exclusively and never through a symlink."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, wanted: Optional[str]) -> "WorkDir":
        if wanted is None:
            return cls(Path(tempfile.mkdtemp(prefix=PROG + "-")))
        path = Path(os.path.abspath(wanted))
        try:
            os.makedirs(path.parent, exist_ok=True)
            os.mkdir(path, 0o700)
        except FileExistsError:
            st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode) or os.listdir(path):
                raise Failure("--work-dir %s exists and is not an empty folder: give a new or empty one" % path,
                              EXIT_USAGE)
        except OSError as e:
            raise Failure("--work-dir %s: %s" % (path, e.strerror or e), EXIT_USAGE)
        return cls(path)

    def file(self, rel: str) -> Path:
        return self.path / rel

    def write(self, rel: str, data: bytes) -> Path:
        target = self.path / rel
        os.makedirs(target.parent, mode=0o700, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(target, flags, 0o600)
        except OSError as e:
            if e.errno == errno.EEXIST:
                raise Failure("%s already exists: generated files are never overwritten" % target)
            raise Failure("cannot create %s: %s" % (target, e.strerror or e))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return target

    def write_text(self, rel: str, text: str) -> Path:
        return self.write(rel, text.encode("utf-8"))


class Plan:
    """The requested cluster and job as documents and files."""

    def __init__(self, opts: argparse.Namespace, work: Optional[WorkDir]) -> None:
        self.o = opts
        self.work = work
        self.run = opts.run_name or "batchscore-%s-%s" % (
            datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S"), secrets.token_hex(2))
        self.output_dir = os.path.abspath(opts.output_dir or os.path.join("batchscore-output", self.run))
        self.output_path = opts.output_path or "azureml://datastores/%s/paths/batchscore/%s/" % (
            opts.datastore, self.run)
        here = Path(__file__).resolve().parent
        self.scripts = here.parent
        self.source = os.path.abspath(opts.source) if opts.source else default_source()
        self.new_cluster = new_cluster_settings(opts)
        # The VM size the job runs on: the existing cluster's, once known.
        self.vm_size = opts.vm_size or self.new_cluster["size"]

    @property
    def folder(self) -> WorkDir:
        """The work folder (a dry run without --work-dir has none)."""
        if self.work is None:
            raise RuntimeError("no work folder in this plan")
        return self.work

    def path(self, rel: str) -> str:
        return str(self.work.file(rel)) if self.work else "WORK/" + rel

    # -- the cluster
    def compute_yaml(self) -> Dict[str, Any]:
        o, s = self.o, self.new_cluster
        doc: Dict[str, Any] = {"$schema": COMPUTE_SCHEMA, "name": o.cluster, "type": "amlcompute",
                               "description": DESCRIPTION, "tags": dict(MADE_BY)}
        if o.location:
            doc["location"] = o.location
        doc.update({"size": s["size"], "tier": s["tier"], "min_instances": s["min_instances"],
                    "max_instances": s["max_instances"], "idle_time_before_scale_down": s["idle_time_before_scale_down"],
                    "ssh_public_access_enabled": bool(o.ssh)})
        if o.ssh:
            doc["ssh_settings"] = {"admin_username": o.admin_username, "ssh_key_value": o.ssh_key_value}
        if o.subnet:
            doc["network_settings"] = {"vnet_name": o.vnet, "subnet": o.subnet} if o.vnet else {"subnet": o.subnet}
        if o.node_public_ip is False:
            doc["enable_node_public_ip"] = False
        if o.identity == "system":
            doc["identity"] = {"type": "system_assigned"}
        elif o.identity == "user":
            doc["identity"] = {"type": "user_assigned",
                               "user_assigned_identities": [{"resource_id": r} for r in o.identity_id]}
        return doc

    def compute_rest_body(self, location: str, sub_id: Optional[str]) -> Dict[str, Any]:
        """What azure-ai-ml sends to ARM for compute.yml (AmlCompute.
        _to_rest_object()): the az rest fallback sends the same."""
        o, s = self.o, self.new_cluster
        props: Dict[str, Any] = {
            "vmSize": s["size"], "vmPriority": "LowPriority" if s["tier"] == "low_priority" else "Dedicated",
            "scaleSettings": {"maxNodeCount": s["max_instances"], "minNodeCount": s["min_instances"],
                              "nodeIdleTimeBeforeScaleDown": iso_duration(s["idle_time_before_scale_down"])},
            "remoteLoginPortPublicAccess": "Enabled" if o.ssh else "Disabled",
            "enableNodePublicIp": o.node_public_ip is not False, "osType": "Linux"}
        if o.ssh:
            props["userAccountCredentials"] = {"adminUserName": o.admin_username,
                                               "adminUserSshPublicKey": o.ssh_key_value}
        if o.subnet:
            props["subnet"] = {"id": o.subnet if not o.vnet else
                               "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/virtualNetworks/%s"
                               "/subnets/%s" % (sub_id, o.resource_group, o.vnet, o.subnet)}
        body: Dict[str, Any] = {"location": location,
                                "properties": {"description": DESCRIPTION, "computeType": "AmlCompute",
                                               "properties": props, "disableLocalAuth": not o.ssh},
                                "tags": dict(MADE_BY)}
        if o.identity == "system":
            body["identity"] = {"type": "SystemAssigned"}
        elif o.identity == "user":
            body["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {r: {} for r in o.identity_id}}
        return body

    # -- the job
    def environment_variables(self) -> Dict[str, str]:
        """Open MPI's parameters (scripts/mpi-params) as OMPI_MCA_* variables,
        since Azure ML runs mpirun itself; then the user's --env (which win)."""
        env = {"OMPI_MCA_" + name: value for name, value in read_mpi_params(self.scripts / "mpi-params")}
        # Ranks are not pinned to one core each (Open MPI's default for small
        # jobs), which would leave a rank's OpenMP threads on that one core.
        env["OMPI_MCA_hwloc_base_binding_policy"] = self.o.bind_ranks
        # Shared-memory single copy needs ptrace rights containers lack.
        env["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"
        # Blob storage mounts (FUSE) do not support HDF5's file locks.
        env["HDF5_USE_FILE_LOCKING"] = "FALSE"
        env.update(self.o.env_pairs)
        return env

    def job_command(self) -> str:
        o = self.o
        model = "${{inputs.model}}" + ("/" + o.model_file if o.model_file else "")
        args = ["batchscore", "--model", model, "--input", "${{inputs.features}}:" + o.dataset,
                "--output", "${{outputs.scores}}/scores.h5", "--resume"] + list(o.batchscore_args)
        # Every rank says how batchscore ended: the helper decides on a
        # resubmission from these lines in the logs.
        status = STATUS_LINE.format(rank="${OMPI_COMM_WORLD_RANK:-0}", code="$rc")
        return " ".join(shell_word(a) for a in args) + '; rc=$?; echo "%s"; exit $rc' % status

    def environment(self) -> Any:
        if self.o.environment:
            return self.o.environment
        if self.o.image:
            return {"image": self.o.image}
        return {"build": {"path": "environment", "dockerfile_path": "Dockerfile"}}

    def job_yaml(self) -> Dict[str, Any]:
        o = self.o
        if is_registered_model(o.model):
            model = {"type": "custom_model", "path": o.model, "mode": "download"}
        else:
            model = {"type": "uri_file", "path": o.model if is_uri(o.model) else os.path.abspath(o.model),
                     "mode": "download"}
        features = o.input_path if is_uri(o.input_path) else os.path.abspath(o.input_path)
        doc: Dict[str, Any] = {
            "$schema": JOB_SCHEMA, "type": "command",
            "display_name": self.run, "experiment_name": o.experiment,
            "description": "batchscore: %d nodes x %d ranks" % (o.nodes, o.ranks_per_node),
            "command": self.job_command(),
            "inputs": {"model": model, "features": {"type": "uri_file", "path": features, "mode": o.input_mode}},
            "outputs": {"scores": {"type": "uri_folder", "mode": "rw_mount", "path": self.output_path}},
            "environment": self.environment(),
            "environment_variables": self.environment_variables(),
            "compute": "azureml:" + o.cluster,
            "resources": {"instance_count": o.nodes},
            "distribution": {"type": "mpi", "process_count_per_instance": o.ranks_per_node},
            "tags": {"batchscore-run": self.run},
        }
        if o.timeout_seconds:
            doc["limits"] = {"timeout": o.timeout_seconds}
        return doc

    def builds_image(self) -> bool:
        return not (self.o.environment or self.o.image)

    def base_image(self) -> str:
        if self.o.base_image:
            return self.o.base_image
        return GPU_IMAGE if is_gpu_size(self.vm_size) else CPU_IMAGE

    def dockerfile_text(self) -> str:
        gpu = is_gpu_size(self.vm_size)
        return DOCKERFILE.format(base_image=self.base_image(), prog=PROG, hdf5_version=HDF5_VERSION,
                                 hdf5_sha256=HDF5_SHA256,
                                 configure="--with-cuda=/usr/local/cuda" if gpu else "--without-cuda")

    # -- files
    def write_compute(self) -> None:
        self.folder.write_text("compute.yml", yaml_text(self.compute_yaml()))

    def write_job(self, with_source: bool = True) -> None:
        self.folder.write_text("job.yml", yaml_text(self.job_yaml()))
        if self.builds_image():
            self.folder.write_text("environment/Dockerfile", self.dockerfile_text())
            if with_source:
                self.folder.write("environment/batchscore-src.tar.gz", pack_source(self.source))


DOCKERFILE = """\
# batchscore built from source on an Azure ML Open MPI image (generated by
# {prog}). Azure ML runs mpirun itself, with the image's Open MPI
# (4.1, in /usr/local); HDF5 and batchscore are built with that Open MPI's
# mpicc and no Ubuntu MPI package is installed: one Open MPI in the image.
FROM {base_image}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \\
 && apt-get install -y --no-install-recommends build-essential autoconf automake pkg-config \\
      libjansson-dev libxxhash-dev libzip-dev zlib1g-dev ca-certificates curl \\
 && rm -rf /var/lib/apt/lists/* \\
 && if dpkg-query -W -f='${{Status}}\\n' 'libopenmpi*' 2>/dev/null | grep -q 'ok installed'; then \\
      echo "the image has Ubuntu's Open MPI next to its own: use another base image" >&2; exit 1; fi
# Parallel HDF5 with the image's mpicc (Ubuntu's parallel HDF5 package would
# bring Ubuntu's Open MPI along).
RUN curl -fsSL -o /tmp/hdf5.tar.gz \\
      https://github.com/HDFGroup/hdf5/releases/download/hdf5_{hdf5_version}/hdf5-{hdf5_version}.tar.gz \\
 && echo "{hdf5_sha256}  /tmp/hdf5.tar.gz" | sha256sum -c - \\
 && mkdir /tmp/hdf5 && tar xzf /tmp/hdf5.tar.gz -C /tmp/hdf5 --strip-components=1 \\
 && cd /tmp/hdf5 \\
 && CC=mpicc ./configure --prefix=/opt/hdf5 --enable-parallel --enable-shared --disable-static \\
      --disable-fortran --disable-cxx --disable-hl --disable-tests --disable-tools \\
 && make -j"$(nproc)" && make install \\
 && cd / && rm -rf /tmp/hdf5 /tmp/hdf5.tar.gz
ADD batchscore-src.tar.gz /opt/batchscore-src/
RUN src=$(dirname "$(find /opt/batchscore-src -maxdepth 2 -name configure.ac | head -n 1)") \\
 && HDF5_CFLAGS=-I/opt/hdf5/include HDF5_LIBS="-L/opt/hdf5/lib -lhdf5 -Wl,-rpath,/opt/hdf5/lib" \\
      BUILD_TARGETS=batchscore "$src/scripts/build" /opt/batchscore/build {configure} \\
 && ln -s /opt/batchscore/build/batchscore /usr/local/bin/batchscore \\
 && ldd /opt/batchscore/build/batchscore | grep -q '/usr/local/lib/libmpi\\.so' \\
 && ! ldd /opt/batchscore/build/batchscore /opt/hdf5/lib/libhdf5.so | grep -q 'x86_64-linux-gnu/libmpi'
"""


def _source_files(source: str) -> List[str]:
    files: Optional[List[str]] = None
    if os.path.exists(os.path.join(source, ".git")) and shutil.which("git"):
        r = subprocess.run(["git", "-C", source, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if r.returncode == 0:
            files = [f for f in r.stdout.decode("utf-8", "surrogateescape").split("\0") if f]
    if files is None:
        files = []
        for root, dirs, names in os.walk(source):
            rel = os.path.relpath(root, source)
            dirs[:] = [d for d in dirs if not (d.startswith(".") or d.startswith("build") or d == "autom4te.cache")]
            files += [os.path.normpath(os.path.join(rel, n)) for n in names]
    return sorted(f for f in set(files) if needed_to_build(f) and os.path.isfile(os.path.join(source, f)))


def needed_to_build(rel: str) -> bool:
    """Whether a source file goes into the image's build context."""
    if rel.endswith(".md"):  # notes beside sources (src/third_party/onnx/README.md) build nothing
        return False
    if rel in BUILD_FILES or rel.startswith(BUILD_DIRS):
        return True
    # The test programs' sources, which Makefile.am names.
    return rel.startswith("tests/") and rel.count("/") == 1 and rel.endswith((".c", ".h"))


def pack_source(source: str) -> bytes:
    """The files the build needs as a reproducible tarball (same files, same
    bytes), so Azure ML reuses the built image until one of them changes."""
    if os.path.isfile(source):
        with open(source, "rb") as f:
            return f.read()

    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = 946684800  # fixed, for a reproducible tarball
        info.mode = 0o755 if info.mode & 0o100 else 0o644
        return info

    raw = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in _source_files(source):
            tar.add(os.path.join(source, rel), arcname="batchscore/" + rel, recursive=False, filter=clean)
    return raw.getvalue()
