"""The fake az's canned answers, made by azure-ai-ml's own classes.

The Azure ML CLI extension (az ml) is a thin layer over azure-ai-ml: it prints
the `_to_dict()` of the entity the SDK builds from the service's answer
(`az ml compute show`: an AmlCompute; `az ml job show` and `job create`: the
CommandJob; `list-sizes`: VmSize; `list-usage`: Usage), and `az ml job stream`
writes what the SDK's stream_logs_until_completion() writes. This module
builds those answers from service-side (REST) bodies with the SDK itself, so
tests/submit/answers/*.json hold the shapes a real az prints at the pinned
version: states such as "ProvisioningState.FAILED", provisioning_errors as an
error code, list-usage entries without their current value, and so on.
`az rest` answers are the ARM bodies themselves (read through the SDK's REST
models, which check them).

    python az_answers.py OUTDIR          write the answers (scripts/make-az-fixtures)
    python az_answers.py --check OUTDIR  compare their shapes with what this SDK makes

Needs azure-ai-ml (the version scripts/make-az-fixtures pins).
"""

import io
import json
import os
import sys
from contextlib import redirect_stdout
from typing import Any, Dict, List, Tuple

SUB = "00000000-1111-2222-3333-444444444444"
RG = "rg"
WS = "ws"
LOCATION = "westeurope"
WS_ID = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.MachineLearningServices/workspaces/%s" % (SUB, RG, WS)
JOB = "jobname"  # the fake az puts the real job name here (the SDK lowercases job names)
MADE_BY = {"made-by": "batchscore-submit"}

QUOTA_TEXT = ("The specified subscription has a Standard DSv3 family vCPU quota of 0 and cannot accomodate for at "
              "least 1 requested managed compute nodes which maps to 4 vCPUs")


# ---- computes -----------------------------------------------------------------

def compute_rest(name: str = "bs-cpu", state: str = "Succeeded", tags: Any = MADE_BY, size: str = "STANDARD_D4S_V3",
                 priority: str = "Dedicated", min_nodes: int = 0, max_nodes: int = 4, idle: str = "PT2M",
                 errors: Any = None, allocation: str = "Steady", current: int = 0, target: int = 0,
                 counts: Any = None, node_errors: Any = None) -> Dict[str, Any]:
    """An ARM compute body, as GET .../computes/NAME returns it."""
    nodes = {"idleNodeCount": 0, "runningNodeCount": 0, "preparingNodeCount": 0, "unusableNodeCount": 0,
             "leavingNodeCount": 0, "preemptedNodeCount": 0}
    nodes.update(counts or {})
    body = {
        "id": WS_ID + "/computes/" + name, "name": name,
        "type": "Microsoft.MachineLearningServices/workspaces/computes", "location": LOCATION,
        "properties": {
            "computeType": "AmlCompute", "computeLocation": LOCATION, "provisioningState": state,
            "description": "batchscore MPI cluster", "createdOn": "2026-03-01T10:00:00.000000+00:00",
            "modifiedOn": "2026-03-01T10:00:00.000000+00:00", "provisioningErrors": errors,
            "isAttachedCompute": False, "disableLocalAuth": True,
            "properties": {
                "osType": "Linux", "vmSize": size, "vmPriority": priority,
                "scaleSettings": {"maxNodeCount": max_nodes, "minNodeCount": min_nodes,
                                  "nodeIdleTimeBeforeScaleDown": idle},
                "remoteLoginPortPublicAccess": "Disabled", "enableNodePublicIp": True, "isolatedNetwork": False,
                "allocationState": allocation, "allocationStateTransitionTime": "2026-03-01T10:00:00.000000+00:00",
                "errors": node_errors, "currentNodeCount": current, "targetNodeCount": target,
                "nodeStateCounts": nodes}}}
    if tags:
        body["tags"] = tags
    return body


def compute_cases() -> Dict[str, Dict[str, Any]]:
    failed = [{"error": {"code": "BadRequest", "message": QUOTA_TEXT}}]
    return {
        "ours": compute_rest(),
        "creating": compute_rest(state="Creating"),
        "updating": compute_rest(state="Updating"),
        "failed": compute_rest(state="Failed", errors=failed),
        # A team's cluster the helper did not create: 2..20 nodes, 30 min idle.
        "team": compute_rest(tags=None, min_nodes=2, max_nodes=20, idle="PT30M"),
        "team-lowpri": compute_rest(tags=None, priority="LowPriority", max_nodes=2),
        "ours-lowpri": compute_rest(priority="LowPriority"),
        "resizing-0-0": compute_rest(allocation="Resizing"),
        "node-errors": compute_rest(allocation="Resizing", node_errors=[
            {"error": {"code": "ScopeLocked", "message": "The scope is locked: a resource lock blocks scaling."}}]),
        "running-2": compute_rest(current=2, target=2, counts={"runningNodeCount": 2}),
        "preparing-2": compute_rest(allocation="Resizing", current=2, target=2, counts={"preparingNodeCount": 2}),
        "preempted": compute_rest(priority="LowPriority", current=1, target=2,
                                  counts={"runningNodeCount": 1, "preemptedNodeCount": 1}),
    }


def compute_show(body: Dict[str, Any]) -> Dict[str, Any]:
    from azure.ai.ml._restclient.arm_ml_service import models
    from azure.ai.ml.entities import Compute
    shown = Compute._from_rest_object(models.ComputeResource(body))._to_dict()
    shown["resourceGroup"] = RG  # az adds it to every answer that has an ARM id
    return shown


# ---- sizes and usage ------------------------------------------------------------

VM_SIZES = [
    {"name": "Standard_D4s_v3", "family": "standardDSv3Family", "vCPUs": 4, "gpus": 0, "osVhdSizeMB": 1047552,
     "maxResourceVolumeMB": 32768, "memoryGB": 16.0, "lowPriorityCapable": True, "premiumIO": True,
     "supportedComputeTypes": ["ComputeInstance", "AmlCompute"]},
    {"name": "Standard_F8s_v2", "family": "standardFSv2Family", "vCPUs": 8, "gpus": 0, "osVhdSizeMB": 1047552,
     "maxResourceVolumeMB": 65536, "memoryGB": 16.0, "lowPriorityCapable": True, "premiumIO": True,
     "supportedComputeTypes": ["ComputeInstance", "AmlCompute"]},
    {"name": "Standard_NC24ads_A100_v4", "family": "standardNCADSA100v4Family", "vCPUs": 24, "gpus": 1,
     "osVhdSizeMB": 1047552, "maxResourceVolumeMB": 65536, "memoryGB": 220.0, "lowPriorityCapable": True,
     "premiumIO": True, "supportedComputeTypes": ["ComputeInstance", "AmlCompute"]},
    {"name": "Standard_DS3_v2", "family": "standardDSv2Family", "vCPUs": 4, "gpus": 0, "osVhdSizeMB": 1047552,
     "maxResourceVolumeMB": 28672, "memoryGB": 14.0, "lowPriorityCapable": False, "premiumIO": True,
     "supportedComputeTypes": ["ComputeInstance", "AmlCompute"]},
]


def usage(name: str, kind: str, current: int, limit: int, scope: str = "") -> Dict[str, Any]:
    rid = "/subscriptions/%s%s/usages/%s" % (SUB, scope, name.replace(" ", "_"))
    return {"id": rid, "amlWorkspaceLocation": LOCATION, "type": "Microsoft.MachineLearningServices/%s/usages" % kind,
            "unit": "Count", "currentValue": current, "limit": limit,
            "name": {"value": name, "localizedValue": name}}


USAGES = [
    usage("Clusters", "totalCores", 3, 200),
    usage("Total Cluster Dedicated Regional vCPUs", "dedicatedCores", 16, 100),
    usage("Standard DSv3 Family Cluster Dedicated vCPUs", "vmFamily", 8, 24),
    usage("Standard DSv3 Family Cluster Dedicated vCPUs", "workspaces", 8, 24,
          "/resourceGroups/%s/providers/Microsoft.MachineLearningServices/workspaces/%s" % (RG, WS)),
    usage("Standard FSv2 Family Cluster Dedicated vCPUs", "vmFamily", 0, 24),
    usage("Standard NCADSA100v4 Family Cluster Dedicated vCPUs", "vmFamily", 0, 0),
    usage("Total Cluster LowPriority Regional vCPUs", "lowPriorityCores", 20, 100),
    usage("Standard DSv3 Family Cluster LowPriority vCPUs", "vmFamily", 0, -1),
]


def list_sizes() -> List[Dict[str, Any]]:
    from azure.ai.ml._restclient.arm_ml_service import models
    from azure.ai.ml.entities import VmSize
    return [VmSize._from_rest_object(models.VirtualMachineSize(s))._to_dict() for s in VM_SIZES]


def list_usage() -> List[Dict[str, Any]]:
    from azure.ai.ml._restclient.arm_ml_service import models
    from azure.ai.ml.entities import Usage
    return [Usage._from_rest_object(models.Usage(u))._to_dict() for u in USAGES]


def checked_rest(model: str, bodies: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """ARM bodies read and written back by the SDK's REST model (which keeps
    what the service sends)."""
    from azure.ai.ml._restclient.arm_ml_service import models
    return [getattr(models, model)(b).as_dict() for b in bodies]


# ---- jobs ---------------------------------------------------------------------------

STATUSES = ["NotStarted", "Starting", "Provisioning", "Preparing", "Queued", "Running", "Finalizing",
            "CancelRequested", "Completed", "Failed", "Canceled", "NotResponding", "Paused", "Unknown"]


def job_rest(name: str, status: str) -> Dict[str, Any]:
    out = "azureml://datastores/workspaceblobstore/paths/batchscore/t1/"
    return {
        "id": WS_ID + "/jobs/" + name, "name": name, "type": "Microsoft.MachineLearningServices/workspaces/jobs",
        "properties": {
            "jobType": "Command", "status": status, "displayName": "t1", "experimentName": "batchscore",
            "description": "batchscore", "tags": {"batchscore-run": "t1"},
            "properties": {"_azureml.ComputeTargetType": "amlctrain", "ContentSnapshotId": "0000"},
            "computeId": WS_ID + "/computes/bs-cpu",
            "command": 'batchscore --model "${{inputs.model}}" --resume',
            "environmentId": WS_ID + "/environments/CliV2AnonymousEnvironment/versions/5f1c0a7d3b9e",
            "environmentVariables": {"HDF5_USE_FILE_LOCKING": "FALSE"},
            "distribution": {"distributionType": "Mpi", "processCountPerInstance": 4},
            "resources": {"instanceCount": 2, "shmSize": "2g"},
            "inputs": {"model": {"jobInputType": "uri_file", "mode": "Download",
                                 "uri": "azureml://datastores/workspaceblobstore/paths/LocalUpload/0000/model.json"}},
            "outputs": {"scores": {"jobOutputType": "uri_folder", "mode": "ReadWriteMount", "uri": out},
                        "default": {"jobOutputType": "uri_folder", "mode": "ReadWriteMount",
                                    "uri": "azureml://datastores/workspaceartifactstore/ExperimentRun/dcid." + name}},
            "services": {"Studio": {"jobServiceType": "Studio",
                                    "endpoint": "https://ml.azure.com/runs/%s?wsid=%s" % (name, WS_ID)},
                         "Tracking": {"jobServiceType": "Tracking",
                                      "endpoint": "azureml://%s.api.azureml.ms/mlflow/v1.0%s" % (LOCATION, WS_ID)}}},
        "systemData": {"createdAt": "2026-03-01T10:00:00Z", "createdBy": "A User", "createdByType": "User"}}


def job_show(name: str, status: str) -> Dict[str, Any]:
    from azure.ai.ml._restclient.arm_ml_service import models
    from azure.ai.ml.entities import Job
    job = Job._from_rest_object(models.JobBase(job_rest(name, status)))
    # jobs.get() answers a Command node; what az prints is its job's dict.
    if hasattr(job, "_to_job"):
        job = job._to_job()
    return job._to_dict()


# ---- az ml job stream ----------------------------------------------------------------

PREEMPTION = ("AzureMLCompute job failed.\nPreemptionError: Nodes of this job got pre-empted. Check if the run "
              "has failed or restarted.\nReason: Received pre-emption warning signal")
NODE_LOST = ("AzureMLCompute job failed.\nJobFailed: Submitted script failed with a non-zero exit code; see the "
             "driver log file for details.\nReason: Job failed with non-zero exit Code")
USER_FAILED = ("Execution failed. User process '/bin/bash' exited with status code %d. Please check log file "
               "'user_logs/std_log_process_0.txt' for error details.")
SECRET_FAILED = (USER_FAILED % 1 + " Log: https://acct.blob.core.windows.net/logs/std_log.txt?sv=2021&"
                 "sig=S3cr3tSAS%2Fsignature&se=2030 accessToken=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl")

# What rank 0 writes (std_log_process_0.txt) and how the service ends the run.
STATUS_LINE = "batchscore-submit: rank 0: batchscore exit status %d"
STREAMS = {
    "completed": (["batchscore: 50000 rows x 1 columns (binary:logistic) in 0.338 s = 148029 rows/s, 8 ranks, "
                   "kernel ref", "batchscore: wrote /mnt/out/scores.h5:/scores", STATUS_LINE % 0], "Completed", None),
    "failed": (["batchscore: input features.h5: dataset '/features' has 29 columns; the model reads 30",
                STATUS_LINE % 1], "Failed", USER_FAILED % 1),
    "failed-secret": (["batchscore: input features.h5: dataset '/features' has 29 columns; the model reads 30",
                       STATUS_LINE % 1], "Failed", SECRET_FAILED),
    "interrupted": (["batchscore: resumed: 12 of 40 chunks were already done",
                     "batchscore: interrupted: 20 of 40 chunks done, progress kept; rerun with --resume",
                     STATUS_LINE % 75], "Failed", USER_FAILED % 75),
    "preempted": (["batchscore: resumed: 12 of 40 chunks were already done"], "Failed", PREEMPTION),
    "node-lost": (["batchscore: resumed: 12 of 40 chunks were already done",
                   "--------------------------------------------------------------------------",
                   "ORTE has lost communication with a remote daemon.",
                   "  HNP daemon   : [[21475,0],0] on node 10.0.0.4",
                   "  Remote daemon: [[21475,0],1] on node 10.0.0.5",
                   "This is usually due to either a failure of the TCP network",
                   "connection to the node, or possibly an internal failure of",
                   "the daemon itself. We cannot recover from this failure, and",
                   "therefore will terminate the job."], "Failed", NODE_LOST),
    "crashed": (["batchscore: internal error: chunk 3 scored twice", STATUS_LINE % 70], "Failed", USER_FAILED % 70),
}


class _RunOps:
    """Run history as the stream sees it: running with the log, then the end."""

    def __init__(self, log: str, status: str, error: Any) -> None:
        from azure.ai.ml._restclient.runhistory import models
        url = "https://acct.blob.core.windows.net/azureml/ExperimentRun/dcid.%s/user_logs/std_log_process_0.txt" % JOB
        files = {"user_logs/std_log_process_0.txt": url}
        self.details = [models.RunDetails({"runId": JOB, "status": "Running", "logFiles": files}),
                        models.RunDetails({"runId": JOB, "status": status, "logFiles": files,
                                           "error": {"error": error} if error else None})]
        self.log = log

    def get_run_details(self, name: str) -> Any:
        return self.details.pop(0) if len(self.details) > 1 else self.details[0]


def stream(case: str) -> Dict[str, Any]:
    from azure.ai.ml._restclient.arm_ml_service import models
    from azure.ai.ml.operations import _job_ops_helper as helper
    lines, status, message = STREAMS[case]
    error = {"code": "UserError", "message": message} if message else None
    ops = _RunOps("\n".join(lines) + "\n", status, error)
    saved = (helper.download_text_from_url, helper._wait_before_polling, helper.create_requests_pipeline_with_retry)
    helper.download_text_from_url = lambda *a, **k: ops.log
    helper._wait_before_polling = lambda *a, **k: 0
    helper.create_requests_pipeline_with_retry = lambda **k: None
    out, err, rc = io.StringIO(), "", 0
    try:
        with redirect_stdout(out):
            helper.stream_logs_until_completion(ops, models.JobBase(job_rest(JOB, "Running")),
                                                requests_pipeline=None)
    except Exception as e:  # what az prints for the SDK's JobException, and its status
        err, rc = "ERROR: %s\n" % e, 1
    finally:
        (helper.download_text_from_url, helper._wait_before_polling,
         helper.create_requests_pipeline_with_retry) = saved
    return {"stdout": out.getvalue(), "stderr": err, "rc": rc}


# ---- what azure-ai-ml sends to ARM for a cluster (the az rest fallback copies it) ----

def sdk_rest_bodies() -> Dict[str, Any]:
    """AmlCompute._to_rest_object() for the clusters tests/submit/test_render.py
    asks the helper to describe; the helper's own az rest body must match."""
    from azure.ai.ml.entities import (AmlCompute, AmlComputeSshSettings, IdentityConfiguration,
                                      ManagedIdentityConfiguration, NetworkSettings)
    uami = "/subscriptions/%s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/bs-id" % SUB
    cases = {
        "basic": AmlCompute(name="bs-cpu", location=LOCATION, description="batchscore MPI cluster", tags=MADE_BY,
                            size="Standard_D4s_v3", tier="dedicated", min_instances=0, max_instances=4,
                            idle_time_before_scale_down=120, ssh_public_access_enabled=False),
        "full": AmlCompute(name="bs-cpu", location=LOCATION, description="batchscore MPI cluster", tags=MADE_BY,
                           size="Standard_F8s_v2", tier="low_priority", min_instances=1, max_instances=8,
                           idle_time_before_scale_down=1800, ssh_public_access_enabled=True,
                           ssh_settings=AmlComputeSshSettings(admin_username="azureuser",
                                                              ssh_key_value="ssh-ed25519 AAAAC3Nza test"),
                           identity=IdentityConfiguration(type="user_assigned", user_assigned_identities=[
                               ManagedIdentityConfiguration(resource_id=uami)]),
                           network_settings=NetworkSettings(vnet_name="vn", subnet="sn"),
                           enable_node_public_ip=False),
    }
    out = {}
    for name, compute in cases.items():
        compute._set_full_subnet_name(SUB, RG)
        out[name] = compute._to_rest_object().as_dict()
    return out


# ---- all of it ---------------------------------------------------------------------------

def build() -> Dict[str, Any]:
    """Every answer file: name -> content."""
    from azure.ai.ml import __version__
    cases = compute_cases()
    statuses = {}
    for s in STATUSES:
        statuses[s] = job_show(JOB, s)["status"]
    template = job_show(JOB, "Running")
    created = job_show(JOB, "Starting")
    return {
        "version.json": {"azure-ai-ml": __version__},
        "compute-show.json": {k: compute_show(v) for k, v in cases.items()},
        "compute-rest.json": dict(zip(cases, checked_rest("ComputeResource", list(cases.values())))),
        "list-sizes.json": list_sizes(),
        "list-usage.json": list_usage(),
        "rest-vm-sizes.json": {"value": checked_rest("VirtualMachineSize", VM_SIZES)},
        "rest-usages.json": {"value": checked_rest("Usage", USAGES)},
        "job-show.json": {"template": template, "status": statuses},
        "job-create.json": created,
        "job-stream.json": {case: stream(case) for case in STREAMS},
        "sdk-rest-bodies.json": sdk_rest_bodies(),
    }


def shape(value: Any) -> Any:
    """The structure of an answer: keys and value types, not values."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return type(value).__name__


def differences(outdir: str) -> List[str]:
    """Where the committed answers' shapes differ from this SDK's."""
    problems = []
    for name, content in build().items():
        if name == "version.json":
            continue
        path = os.path.join(outdir, name)
        try:
            with open(path, encoding="utf-8") as f:
                stored = json.load(f)
        except (OSError, ValueError) as e:
            problems.append("%s: %s" % (path, e))
            continue
        if name in ("job-stream.json", "sdk-rest-bodies.json"):
            same = stored == json.loads(json.dumps(content))
        else:
            same = shape(stored) == shape(json.loads(json.dumps(content)))
        if not same:
            problems.append("%s differs from what this azure-ai-ml makes (rerun scripts/make-az-fixtures)" % name)
    return problems


def write(outdir: str) -> Tuple[int, str]:
    os.makedirs(outdir, exist_ok=True)
    files = build()
    for name, content in files.items():
        with open(os.path.join(outdir, name), "w", encoding="utf-8") as f:
            json.dump(content, f, indent=1, sort_keys=True)
            f.write("\n")
    return len(files), files["version.json"]["azure-ai-ml"]


def main(argv: List[str]) -> int:
    if len(argv) == 2 and argv[0] == "--check":
        problems = differences(argv[1])
        for p in problems:
            print(p)
        return 1 if problems else 0
    if len(argv) != 1:
        print(__doc__)
        return 2
    count, version = write(argv[0])
    print("wrote %d answer files to %s (azure-ai-ml %s)" % (count, argv[0], version))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
