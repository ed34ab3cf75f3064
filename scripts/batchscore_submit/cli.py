"""The command line, and the run's steps in order (or, with --dry-run, the
plan of them)."""

import argparse
import json
import logging
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import List, Optional

from . import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, PROG, Failure
from .az import Commands, Runner
from .cluster import Cluster
from .config import apply_workspace_defaults, config_tokens, env_number
from .follow import Job
from .render import CPU_IMAGE, GPU_IMAGE, NEW_CLUSTER, Plan, WorkDir, yaml_text
from .validate import GUID, validate

log = logging.getLogger("batchscore_submit")

EXAMPLES = """\
examples:
  # See exactly what would happen: every file and every az command.
  %(prog)s --resource-group my-rg --workspace my-ws --cluster bs-cpu \\
      --vm-size Standard_D4s_v3 --max-nodes 4 --nodes 2 --ranks-per-node 4 \\
      --model model.json --input features.h5:/features --output-dir scores --dry-run

  # Low-priority nodes, 8 ranks with 1 OpenMP thread each; a job that loses
  # a node is resubmitted up to 5 times; batchscore gets everything after '--'.
  %(prog)s -g my-rg -w my-ws --cluster bs-lowpri --tier low_priority \\
      --max-nodes 2 --nodes 2 --ranks-per-node 4 --max-resubmits 5 \\
      --model model.json --input azureml://datastores/workspaceblobstore/paths/f.h5:/features \\
      --output-dir scores -- --threads 1

  # A team's existing cluster, used as it is (no sizing options), with the
  # image a previous run registered.
  %(prog)s --cluster team-cpu --nodes 4 --environment azureml:CliV2AnonymousEnvironment:0123abcd \\
      --model model.json --input features.h5

  # Settings from a file (one 'option = value' a line); options still win.
  %(prog)s --config cluster.conf --model model.json --input features.h5

exit status: 0 done, 1 the job or an az call failed, 2 bad command line,
3 the cluster could not be provisioned or used as asked (quota, VM size,
name, resource lock, settings that cannot or may not change), 130 Ctrl-C.

The workspace (-g, -w, --subscription) defaults to an Azure ML config.json
(here or in a parent folder) and then to 'az configure --defaults'.
environment: BATCHSCORE_SUBMIT_POLL_SECONDS, BATCHSCORE_SUBMIT_STUCK_SECONDS and
BATCHSCORE_SUBMIT_PROVISION_TIMEOUT give the defaults of the matching options.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s [options] [-- BATCHSCORE_ARGS...]",
        description="Run batchscore on an Azure ML compute cluster as an MPI job (nodes x ranks per node):\n"
                    "make sure the cluster exists (changing only what you ask for), check the VM size and the\n"
                    "quota first, follow the job, resubmit it with --resume when batchscore was interrupted or\n"
                    "a node went away, and download the scores.",
        epilog=EXAMPLES)
    _workspace_options(p.add_argument_group("workspace"))
    _cluster_options(p.add_argument_group("cluster (an existing cluster keeps every setting you do not give)"))
    _job_options(p.add_argument_group("job"))
    _running_options(p.add_argument_group("running"))
    return p


def _workspace_options(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--subscription", metavar="ID", help="subscription id or name (default: az's current one)")
    g.add_argument("-g", "--resource-group", metavar="RG", help="resource group of the workspace")
    g.add_argument("-w", "--workspace", metavar="WS", help="Azure ML workspace")
    g.add_argument("--config", metavar="FILE",
                   help="read options from FILE, one 'option = value' a line (e.g. 'tier = low_priority'); "
                        "options on the command line win")


def _cluster_options(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--cluster", metavar="NAME", help="compute cluster name (3-16 letters, digits, hyphens)")
    g.add_argument("--vm-size", metavar="SIZE",
                   help="VM size (new cluster: %s; list: az ml compute list-sizes)" % NEW_CLUSTER["size"])
    g.add_argument("--tier", metavar="dedicated|low_priority",
                   help="VM priority (new cluster: dedicated); low_priority is cheaper and can be preempted")
    g.add_argument("--min-nodes", type=int, metavar="N", help="nodes kept running when idle (new cluster: 0)")
    g.add_argument("--max-nodes", type=int, metavar="N",
                   help="most nodes the cluster scales to (new cluster: 4, or --nodes if more)")
    g.add_argument("--idle-seconds", type=int, metavar="N", help="idle time before nodes are released (new "
                   "cluster: 120)")
    g.add_argument("--location", metavar="REGION", help="cluster region (default: the workspace's)")
    g.add_argument("--ssh", dest="ssh", action="store_true", default=None,
                   help="open the nodes' public SSH port (off by default); needs --ssh-key")
    g.add_argument("--no-ssh", dest="ssh", action="store_false", help="keep SSH closed (a new cluster's default)")
    g.add_argument("--ssh-key", metavar="FILE", help="SSH public key file for the admin account")
    g.add_argument("--admin-username", metavar="NAME", default="azureuser", help="SSH admin user (default %(default)s)")
    g.add_argument("--identity", metavar="none|system|user", help="managed identity of the nodes (new cluster: none)")
    g.add_argument("--identity-id", action="append", default=[], metavar="RESOURCE_ID",
                   help="resource id of a user-assigned identity (repeatable; implies --identity user)")
    g.add_argument("--vnet", metavar="NAME", help="virtual network name (with --subnet NAME)")
    g.add_argument("--subnet", metavar="NAME|ID", help="subnet name (with --vnet) or full subnet resource id")
    g.add_argument("--no-node-public-ip", dest="node_public_ip", action="store_false", default=None,
                   help="nodes without public IP addresses (needs --subnet; the network must reach Azure)")
    g.add_argument("--node-public-ip", dest="node_public_ip", action="store_true",
                   help="nodes with public IP addresses (a new cluster's default)")
    g.add_argument("--yes", action="store_true",
                   help="allow changes to an existing cluster this helper did not create (it may be shared)")
    g.add_argument("--keep-existing", action="store_true",
                   help="use an existing cluster as it is, even where the settings you gave differ")
    g.add_argument("--provision-only", action="store_true", help="stop once the cluster is ready")
    g.add_argument("--use-rest", action="store_true",
                   help="manage the cluster with az rest even where the ml extension is installed")


def _job_options(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--nodes", type=int, default=1, metavar="N", help="nodes for the job (default 1)")
    g.add_argument("--ranks-per-node", type=int, default=1, metavar="N",
                   help="MPI processes per node (default 1); total ranks = nodes x ranks per node")
    g.add_argument("--bind-ranks", default="none", metavar="none|core|socket|numa|hwthread",
                   help="pin each rank (Open MPI's binding policy); default none, so a rank's threads use the "
                        "node's cores")
    g.add_argument("--model", metavar="PATH|URI",
                   help="model: a local file (uploaded), an azureml:// URI, or a registered model "
                        "azureml:NAME:VERSION")
    g.add_argument("--model-file", metavar="PATH",
                   help="for a registered model stored as a folder: the model file inside it")
    g.add_argument("--input", metavar="PATH[:DATASET]",
                   help="features HDF5 file (local path, uploaded, or URI) and dataset (default /features)")
    g.add_argument("--input-mode", default="ro_mount", choices=("ro_mount", "download"),
                   help="how the job sees the features (default ro_mount)")
    g.add_argument("--output-dir", metavar="DIR", help="where to download the scores (default ./batchscore-output/RUN)")
    g.add_argument("--output-path", metavar="URI",
                   help="where the job writes (default azureml://datastores/DATASTORE/paths/batchscore/RUN/); "
                        "fixed for the run so a resubmitted job resumes there")
    g.add_argument("--datastore", default="workspaceblobstore", metavar="NAME",
                   help="datastore for the default output path (default %(default)s)")
    g.add_argument("--run-name", metavar="NAME",
                   help="name of this run (default batchscore-DATE-TIME-XXXX); jobs are RUN-1, RUN-2...; "
                        "give an earlier run's name to continue its output (refused while one of its jobs runs)")
    g.add_argument("--experiment", default="batchscore", metavar="NAME", help="experiment name (default %(default)s)")
    g.add_argument("--environment", metavar="azureml:NAME:VERSION",
                   help="run in a registered environment that has batchscore (no image build)")
    g.add_argument("--image", metavar="IMAGE", help="run in a prebuilt image that has batchscore and Open MPI "
                   "(no image build)")
    g.add_argument("--base-image", metavar="IMAGE",
                   help="Open MPI image to build batchscore on (default %s, or %s for GPU sizes)"
                        % (CPU_IMAGE, GPU_IMAGE))
    g.add_argument("--source", metavar="DIR|TARBALL",
                   help="batchscore source to build in the image: a source tree or a .tar.gz (default: the source tree this "
                        "helper runs from; an installed helper needs this, --image or --environment)")
    g.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="environment variable for the job (repeatable), e.g. OMP_NUM_THREADS=2; stored in the "
                        "job's definition, so never a secret")
    g.add_argument("--timeout-seconds", type=int, metavar="N", help="job time limit")
    g.add_argument("--max-resubmits", type=int, default=3, metavar="N",
                   help="resubmissions after an interruption or a lost node (default 3)")
    g.add_argument("--no-stream", action="store_true", help="poll the status instead of streaming the logs")
    g.add_argument("--no-download", action="store_true", help="do not download the output")
    g.add_argument("--on-interrupt", default="ask", choices=("ask", "cancel", "leave"),
                   help="on Ctrl-C: ask whether to cancel the job (default; without a terminal it is left "
                        "running), cancel it, or leave it running")


def _running_options(g: argparse._ArgumentGroup) -> None:
    env = os.environ
    g.add_argument("--dry-run", action="store_true", help="print every file and az command; run nothing")
    g.add_argument("--work-dir", metavar="DIR",
                   help="a new or empty folder for the generated files (default: a private temporary one); with "
                        "--dry-run, everything needed to submit by hand is written there")
    g.add_argument("--poll-seconds", type=float, metavar="S", default=env_number(env, "BATCHSCORE_SUBMIT_POLL_SECONDS",
                                                                                 15.0),
                   help="status polling interval (default 15)")
    g.add_argument("--stuck-seconds", type=float, metavar="S",
                   default=env_number(env, "BATCHSCORE_SUBMIT_STUCK_SECONDS", 600.0),
                   help="how long a resize at 0 -> 0 nodes, or a job NotResponding or Paused, may last before "
                        "it is reported (default 600)")
    g.add_argument("--provision-timeout", type=float, metavar="S",
                   default=env_number(env, "BATCHSCORE_SUBMIT_PROVISION_TIMEOUT", 1800.0),
                   help="how long to wait for the cluster to be provisioned (default 1800)")
    g.add_argument("-v", "--verbose", action="store_true", help="print every az command before running it")


def parse_command_line(argv: List[str]) -> argparse.Namespace:
    extra: List[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    parser = build_parser()
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    if known.config:
        argv = config_tokens(parser, known.config) + argv
    opts = parser.parse_args(argv)
    opts.batchscore_args = extra
    return opts


class _Format(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = "%s: %s" % (PROG, "warning: " if record.levelno == logging.WARNING else "")
        return prefix + record.getMessage()


def setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Format())
    root = logging.getLogger("batchscore_submit")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False


def ask_terminal(question: str) -> bool:
    """A yes/no question, only where someone can answer it."""
    if not sys.stdin.isatty():
        return False
    sys.stderr.write("%s: %s" % (PROG, question))
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def main(argv: List[str]) -> int:
    setup_logging("-v" in argv or "--verbose" in argv)
    job: Optional[Job] = None
    try:
        opts = parse_command_line(argv)
        setup_logging(opts.verbose)
        notes = apply_workspace_defaults(opts, Path.cwd(), os.environ)
        errors, warnings = validate(opts)
        if errors:
            for e in errors:
                log.error("%s", e)
            log.error("nothing was run (see --help)")
            return EXIT_USAGE
        for n in notes:
            log.info("%s", n)
        for w in warnings:
            log.warning("%s", w)
        cmds = Commands(opts.resource_group, opts.workspace, opts.subscription)
        if opts.dry_run:
            return dry_run(opts, cmds)
        if not shutil.which("az"):
            raise Failure("the Azure CLI (az) is not on PATH: install it, then run 'az login' and "
                          "'az extension add --name ml'")
        plan = Plan(opts, WorkDir.create(opts.work_dir))
        runner = Runner()
        has_ml = runner.run(cmds.ext_show()).rc == 0
        if not has_ml and not opts.use_rest:
            log.info("the Azure ML CLI extension (ml) is not installed: handling the cluster with az rest")
        cluster = Cluster(plan, cmds, runner, opts.use_rest or not has_ml)
        job = Job(plan, cmds, runner, cluster, ask_terminal)
        return run(plan, cluster, job, has_ml)
    except Failure as f:
        log.error("%s", f)
        if f.detail:
            print(f.detail, file=sys.stderr)
        return f.code
    except KeyboardInterrupt:
        stop = job.interrupted() if job else Failure("interrupted", EXIT_INTERRUPTED)
        log.error("%s", stop)
        return stop.code
    finally:
        if job is not None and job.node_hours_line():
            log.info("%s", job.node_hours_line())


def run(plan: Plan, cluster: Cluster, job: Job, has_ml: bool) -> int:
    o = plan.o
    log.info("generated files are in %s", plan.folder.path)
    attempt = None
    if not o.provision_only and has_ml:
        attempt = job.first_attempt()  # before anything changes: a run still going is not joined
    decision = cluster.resolve()
    cluster.preflight()
    cluster.apply(decision)
    log.info("cluster %s is ready", o.cluster)
    if o.provision_only:
        return EXIT_OK
    if attempt is None:
        raise Failure("submitting the job needs the Azure ML CLI extension: az extension add --name ml "
                      "(cluster %s is ready)" % o.cluster)
    plan.write_job()
    name = job.run(attempt)
    log.info("job %s completed", name)
    if not o.no_download:
        job.download(name)
    return EXIT_OK


# ---- --dry-run -------------------------------------------------------------------

def dry_run(opts: argparse.Namespace, cmds: Commands) -> int:
    work = WorkDir.create(opts.work_dir) if opts.work_dir else None
    plan = Plan(opts, work)
    text = dry_run_text(plan, cmds)
    if work:
        plan.write_compute()
        if opts.use_rest:
            work.write_text("compute-rest.json", json.dumps(_dry_rest_body(plan), indent=2) + "\n")
        if not opts.provision_only:
            plan.write_job(with_source=True)
        work.write_text("plan.txt", text)
    sys.stdout.write(text)
    return EXIT_OK


def _dry_rest_body(plan: Plan) -> dict:
    """The az rest body, with what only the service can tell as placeholders."""
    o = plan.o
    sub = o.subscription if o.subscription and GUID.match(o.subscription) else "<subscription id>"
    return plan.compute_rest_body(o.location or "<the workspace's location>", sub)


def dry_run_text(plan: Plan, cmds: Commands) -> str:
    o = plan.o
    rest = o.use_rest
    out = ["# %s --dry-run: nothing is run. Run %s: %d node(s) x %d rank(s) on cluster %s.\n"
           % (PROG, plan.run, o.nodes, o.ranks_per_node, o.cluster)]
    out.append("## Files (in %s)\n" % (plan.work.path if plan.work else "a new private temporary folder, WORK"))
    out.append("### %s (used only if the cluster does not exist)\n%s" % (plan.path("compute.yml"),
                                                                        yaml_text(plan.compute_yaml())))
    if rest:
        out.append("### %s\n%s\n" % (plan.path("compute-rest.json"), json.dumps(_dry_rest_body(plan), indent=2)))
    if not o.provision_only:
        if not o.vm_size:
            out.append("# (the image below is for %s; an existing cluster's own VM size decides it)\n"
                       % plan.vm_size)
        out.append("### %s\n%s" % (plan.path("job.yml"), yaml_text(plan.job_yaml())))
        if plan.builds_image():
            out.append("### %s\n%s" % (plan.path("environment/Dockerfile"), plan.dockerfile_text()))
            out.append("### %s\nthe files of %s the build needs, packed reproducibly\n"
                       % (plan.path("environment/batchscore-src.tar.gz"), plan.source))
    out.append("\n## az commands, in order\n")
    out += _dry_run_cluster(plan, cmds)
    if o.provision_only:
        out.append("\n# --provision-only: stop here")
        return "\n".join(out) + "\n"
    out += _dry_run_job(plan, cmds)
    return "\n".join(out) + "\n"


def _dry_run_cluster(plan: Plan, cmds: Commands) -> List[str]:
    o, j = plan.o, shlex.join
    sub = o.subscription if o.subscription and GUID.match(o.subscription) else None
    url_sub = sub or ("<subscription id>" if o.subscription else None)
    loc = o.location or "WORKSPACE_LOCATION"
    out = []
    if o.use_rest:
        if o.subscription and not sub or o.vnet and not sub:
            out.append("# the subscription id, for the URLs and the subnet id\n%s" % j(cmds.account_show()))
        out.append("# 1. does the cluster exist? (the settings you gave are compared; nothing else is)\n%s"
                   % j(cmds.rest("get", cmds.compute_url(o.cluster, url_sub))))
        if not o.location:
            out.append("# the workspace's location\n%s" % j(cmds.rest("get", cmds.workspace_url(url_sub))))
        out.append("# 2. pre-flight, before anything changes: the VM size is offered in the region, the quota "
                   "covers the nodes\n%s\n%s" % (j(cmds.rest("get", cmds.location_url("vmSizes", loc, url_sub))),
                                                 j(cmds.rest("get", cmds.location_url("usages", loc, url_sub)))))
        out.append("# 3a. if it does not exist: create it, then repeat the GET above every %g s until Succeeded\n%s"
                   % (o.poll_seconds, j(cmds.rest("put", cmds.compute_url(o.cluster, url_sub),
                                                  plan.path("compute-rest.json")))))
        out.append("# 3b. if scale settings you gave differ: update them (on a cluster %s did not create, only "
                   "with --yes)\n%s" % (PROG, j(cmds.rest("patch", cmds.compute_url(o.cluster, url_sub),
                                                          plan.path("compute-update.json")))))
        return out
    if not o.provision_only:
        out.append("# 0. the run's earlier jobs (%s-1, %s-2 ... while they exist): refuse if one still runs\n%s"
                   % (plan.run, plan.run, j(cmds.job_show("%s-1" % plan.run))))
    out.append("# 1. the ml extension is there? (if not, the cluster is handled with az rest)\n%s" % j(cmds.ext_show()))
    out.append("# 2. does the cluster exist? (the settings you gave are compared; nothing else is)\n%s"
               % j(cmds.compute_show(o.cluster)))
    out.append("# 3. pre-flight, before anything changes: the VM size is offered in the region, the quota covers "
               "the nodes (vCPUs and current use come from ARM where az ml leaves them out)\n%s\n%s\n%s\n%s"
               % (j(cmds.list_sizes(o.location)), j(cmds.list_usage(o.location)),
                  j(cmds.rest("get", cmds.location_url("vmSizes", loc, url_sub))),
                  j(cmds.rest("get", cmds.location_url("usages", loc, url_sub)))))
    out.append("# 4a. if it does not exist: create it, then repeat the show above every %g s until Succeeded\n%s"
               % (o.poll_seconds, j(cmds.compute_create(plan.path("compute.yml")))))
    changes = {k: v for k, v in (("min_instances", o.min_nodes), ("max_instances", o.max_nodes),
                                 ("idle_time_before_scale_down", o.idle_seconds)) if v is not None}
    if o.identity is not None:
        changes["identity"] = o.identity
    if changes:
        out.append("# 4b. if settings you gave differ: update them (only those that differ are passed; on a "
                   "cluster %s did not create, only with --yes); size, tier, SSH, subnet, public IPs and location "
                   "cannot change\n%s" % (PROG, j(cmds.compute_update(o.cluster, changes, o.identity,
                                                                      o.identity_id))))
    else:
        out.append("# 4b. an existing cluster is used as it is: no sizing option was given")
    return out


def _dry_run_job(plan: Plan, cmds: Commands) -> List[str]:
    o, j = plan.o, shlex.join
    first = "%s-1" % plan.run
    out = ["# 5. submit the job (Azure ML uploads the inputs%s)\n%s" % (
        " and builds the image from %s" % plan.path("environment") if plan.builds_image() else "",
        j(cmds.job_create(plan.path("job.yml"), first)))]
    out.append("# 6. follow it: stream the logs, and poll the status every %g s; while it waits or runs, read "
               "what the cluster's nodes do (a resize stuck at 0 -> 0 nodes for %g s is reported)\n%s\n%s\n%s"
               % (o.poll_seconds, o.stuck_seconds, j(cmds.job_stream(first)), j(cmds.job_show(first)),
                  j(cmds.rest("get", cmds.compute_url(o.cluster)))))
    out.append("# 7. if it failed: its logs, for batchscore's exit statuses (75: interrupted or a node went away)\n"
               "%s" % j(cmds.job_logs(first, plan.path("logs-" + first))))
    out.append("# 8. if it may be resumed: submit the same job.yml again as %s-2, %s-3 ... (at most %d times); it "
               "writes to the same %s, where batchscore --resume continues\n%s"
               % (plan.run, plan.run, o.max_resubmits, plan.output_path, j(cmds.job_create(plan.path("job.yml"),
                                                                                      "%s-2" % plan.run))))
    if not o.no_download:
        out.append("# 9. once a job completes, download its scores into %s (the job's name: %s, or the last "
                   "resubmission's)\n%s" % (plan.output_dir, first, j(cmds.job_download(first, plan.output_dir))))
    return out
