"""The compute cluster: its state as az prints it, reconciling it with the
request without touching what was not asked for, the pre-flight checks (the
VM size exists in the region, the quota covers the nodes), and what its nodes
are doing while a job waits or runs."""

import argparse
import json
import logging
import re
import shlex
import time
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from . import EXIT_CLUSTER, Failure, PROG
from .az import Commands, Runner, first_line, indent, is_not_found, parse_json, redact
from .render import MADE_BY, Plan, iso_duration, parse_iso_duration
from .validate import GUID, NAME_MAX, NAME_MIN

log = logging.getLogger(__name__)

PROVISIONING_STATES = ("Unknown", "Updating", "Creating", "Deleting", "Succeeded", "Failed", "Canceled")
NODE_STATES = ("running", "idle", "preparing", "unusable", "leaving", "preempted")


def normalise_state(text: Any, known: Tuple[str, ...]) -> Optional[str]:
    """'ProvisioningState.FAILED' (newer SDKs print the enum), 'failed' or
    'Failed' -> 'Failed'; an unknown state is kept as it is."""
    if text is None:
        return None
    raw = str(text).split(".")[-1]
    key = re.sub(r"[^a-z]", "", raw.lower())
    for state in known:
        if state.lower() == key:
            return state
    return raw


def norm_tier(value: Any) -> Optional[str]:
    if value is None:
        return None
    v = re.sub(r"[^a-z]", "", str(value).split(".")[-1].lower())
    return {"lowpriority": "low_priority", "dedicated": "dedicated"}.get(v, str(value))


def norm_identity(kind: Any) -> str:
    k = re.sub(r"[^a-z,]", "", str(kind or "none").split(".")[-1].lower())
    return {"systemassigned": "system", "userassigned": "user", "none": "none", "": "none"}.get(k, k)


def error_texts(errors: Any) -> List[str]:
    """Provisioning or node errors as lines. az ml prints only an error code
    (a string); ARM gives a list of {error: {code, message}}."""
    if errors is None or errors == "":
        return []
    if isinstance(errors, (str, dict)):
        errors = [errors]
    out = []
    for e in errors:
        if isinstance(e, dict):
            inner: Dict[str, Any] = e["error"] if isinstance(e.get("error"), dict) else e
            code, msg = inner.get("code"), inner.get("message")
            out.append(redact(("(%s) " % code if code else "") + (msg or json.dumps(e))))
        else:
            out.append(redact(str(e)))
    return out


def from_ml(c: Dict[str, Any]) -> Dict[str, Any]:
    """`az ml compute show` JSON -> the settings we compare."""
    net = c.get("network_settings") or {}
    ident = c.get("identity") or {}
    ids = [u.get("resource_id") if isinstance(u, dict) else u for u in ident.get("user_assigned_identities") or []]
    return {
        "size": c.get("size"), "tier": norm_tier(c.get("tier")),
        "min_instances": c.get("min_instances"), "max_instances": c.get("max_instances"),
        "idle_time_before_scale_down": c.get("idle_time_before_scale_down"),
        "ssh_public_access_enabled": bool(c.get("ssh_public_access_enabled")),
        "subnet": net.get("subnet"), "vnet": net.get("vnet_name"),
        "enable_node_public_ip": c.get("enable_node_public_ip") is not False,
        "identity": norm_identity(ident.get("type")), "identity_ids": [i for i in ids if i],
        "location": c.get("location"), "state": normalise_state(c.get("provisioning_state"), PROVISIONING_STATES),
        "errors": error_texts(c.get("provisioning_errors")), "tags": c.get("tags") or {},
    }


def from_rest(r: Dict[str, Any]) -> Dict[str, Any]:
    """ARM compute JSON -> the settings we compare, plus the allocation."""
    p = r.get("properties") or {}
    pp = p.get("properties") or {}
    scale = pp.get("scaleSettings") or {}
    ident = r.get("identity") or {}
    subnet = (pp.get("subnet") or {}).get("id")
    ssh = pp.get("remoteLoginPortPublicAccess")
    counts = pp.get("nodeStateCounts") or {}
    return {
        "size": pp.get("vmSize"), "tier": norm_tier(pp.get("vmPriority")),
        "min_instances": scale.get("minNodeCount"), "max_instances": scale.get("maxNodeCount"),
        "idle_time_before_scale_down": parse_iso_duration(scale.get("nodeIdleTimeBeforeScaleDown")),
        # NotSpecified means open unless the cluster is in a VNet.
        "ssh_public_access_enabled": ssh == "Enabled" or (ssh == "NotSpecified" and not subnet),
        "subnet": subnet, "vnet": None, "enable_node_public_ip": pp.get("enableNodePublicIp") is not False,
        "identity": norm_identity(ident.get("type")),
        "identity_ids": list((ident.get("userAssignedIdentities") or {}).keys()),
        "location": r.get("location"), "state": normalise_state(p.get("provisioningState"), PROVISIONING_STATES),
        "errors": error_texts(p.get("provisioningErrors")), "tags": r.get("tags") or {},
        "allocation": pp.get("allocationState"), "current": pp.get("currentNodeCount") or 0,
        "target": pp.get("targetNodeCount") or 0, "node_errors": error_texts(pp.get("errors")),
        "nodes": {s: counts.get(s + "NodeCount") or 0 for s in NODE_STATES},
    }


def made_by_us(have: Dict[str, Any]) -> bool:
    return all((have.get("tags") or {}).get(k) == v for k, v in MADE_BY.items())


# ---- what was asked, and how it differs ---------------------------------------

def asked_settings(opts: argparse.Namespace) -> Dict[str, Any]:
    """Only the cluster settings the user gave (on the command line or in
    --config): an existing cluster is compared on these and nothing else."""
    asked = {"size": opts.vm_size, "tier": opts.tier, "min_instances": opts.min_nodes,
             "max_instances": opts.max_nodes, "idle_time_before_scale_down": opts.idle_seconds,
             "ssh_public_access_enabled": opts.ssh, "location": opts.location,
             "enable_node_public_ip": opts.node_public_ip}
    asked = {k: v for k, v in asked.items() if v is not None}
    if opts.subnet:
        asked["subnet"] = (opts.subnet, opts.vnet)
    if opts.identity is not None:
        asked["identity"] = (opts.identity, list(opts.identity_id))
    return asked


class Diff(NamedTuple):
    setting: str
    have: Any
    want: Any
    updatable: bool


def subnet_matches(have: Optional[str], want_subnet: str, want_vnet: Optional[str]) -> bool:
    if not have:
        return False
    have, want_subnet = have.lower(), want_subnet.lower()
    if want_vnet:
        if have.startswith("/subscriptions/"):
            return have.endswith("/virtualnetworks/%s/subnets/%s" % (want_vnet.lower(), want_subnet))
        return have == want_subnet
    return have == want_subnet or (not have.startswith("/") and want_subnet.endswith("/subnets/" + have))


def differences(have: Dict[str, Any], asked: Dict[str, Any], rest_mode: bool) -> List[Diff]:
    """Where an existing cluster differs from what was asked."""
    diffs = []
    for key in ("size", "location"):
        if key in asked and re.sub(r"\s", "", str(have.get(key) or "")).lower() != \
                re.sub(r"\s", "", asked[key]).lower():
            diffs.append(Diff(key, have.get(key), asked[key], False))
    for key, updatable in (("tier", False), ("min_instances", True), ("max_instances", True),
                           ("idle_time_before_scale_down", True), ("ssh_public_access_enabled", False),
                           ("enable_node_public_ip", False)):
        if key in asked and have.get(key) != asked[key]:
            diffs.append(Diff(key, have.get(key), asked[key], updatable))
    if "subnet" in asked:
        subnet, vnet = asked["subnet"]
        if not subnet_matches(have.get("subnet"), subnet, vnet):
            diffs.append(Diff("subnet", have.get("subnet"), "%s/%s" % (vnet, subnet) if vnet else subnet, False))
    if "identity" in asked:
        kind, ids = asked["identity"]
        same = have["identity"] == kind and \
            sorted(i.lower() for i in have["identity_ids"]) == sorted(i.lower() for i in ids)
        if not same:
            diffs.append(Diff("identity", (have["identity"] + " " + ",".join(have["identity_ids"])).strip(),
                              (kind + " " + ",".join(ids)).strip(), not rest_mode))
    return diffs


class Decision(NamedTuple):
    action: str  # "create", "use" or "update"
    changes: Dict[str, Any]  # for "update": setting -> new value
    diffs: List[Diff]


def decide(have: Optional[Dict[str, Any]], asked: Dict[str, Any], nodes: int, yes: bool, keep_existing: bool,
           rest_mode: bool, cluster: str, scope: str) -> Decision:
    """What to do with the cluster. Only settings that were asked for are
    changed; a cluster this helper did not create changes only with --yes."""
    if have is None:
        return Decision("create", {}, [])
    diffs = differences(have, asked, rest_mode)
    max_nodes = have.get("max_instances") or 0
    if keep_existing or not diffs:
        if nodes > max_nodes:
            ask = "" if made_by_us(have) else " --yes"
            raise Failure("the job asks for %d nodes but cluster %s scales to at most %d: lower --nodes, or pass "
                          "--max-nodes %d%s to raise the cluster's maximum"
                          % (nodes, cluster, max_nodes, nodes, ask), EXIT_CLUSTER)
        return Decision("use", {}, diffs)
    fixed = [d for d in diffs if not d.updatable]
    if fixed:
        raise Failure(
            "cluster %s exists with settings that cannot be changed on an existing cluster (%s): leave those "
            "options out to use it as it is, choose another --cluster, delete it (az ml compute delete --name %s "
            "%s --yes) and run again, or pass --keep-existing" % (
                cluster, ", ".join(d.setting for d in fixed), shlex.quote(cluster), scope), EXIT_CLUSTER)
    changes = {d.setting: asked[d.setting] for d in diffs}
    if not made_by_us(have) and not yes:
        raise Failure("cluster %s was not created by %s and may be shared: changing %s needs --yes (or leave "
                      "those options out to use it as it is)" % (cluster, PROG, ", ".join(changes)), EXIT_CLUSTER)
    new_max = changes.get("max_instances", max_nodes)
    if nodes > new_max:
        raise Failure("the job asks for %d nodes but cluster %s would scale to at most %d: pass --max-nodes %d"
                      % (nodes, cluster, new_max, nodes), EXIT_CLUSTER)
    return Decision("update", changes, diffs)


# ---- pre-flight: the VM size and the quota -------------------------------------

def _pick(entry: Dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if entry.get(k) is not None:
            return entry[k]
    return None


class SizeFacts(NamedTuple):
    name: str
    family: Optional[str]
    vcpus: Optional[int]
    gpus: Optional[int]
    low_priority: Optional[bool]


def size_facts(entry: Dict[str, Any]) -> SizeFacts:
    """One VM size, from `az ml compute list-sizes` (whose fields depend on
    the SDK version: recent ones print only name, family and gpus) or ARM."""
    return SizeFacts(str(entry.get("name")), _pick(entry, "family"), _pick(entry, "v_cp_us", "vCPUs", "vcpus"),
                     _pick(entry, "gpus"), _pick(entry, "low_priority_capable", "lowPriorityCapable"))


def find_size(sizes: List[Dict[str, Any]], name: str) -> Optional[SizeFacts]:
    for entry in sizes:
        if isinstance(entry, dict) and str(entry.get("name", "")).lower() == name.lower():
            return size_facts(entry)
    return None


def size_problems(facts: Optional[SizeFacts], size: str, tier: str, region: str,
                  sizes: List[Dict[str, Any]]) -> List[str]:
    if facts is None:
        near = sorted(str(e.get("name")) for e in sizes if isinstance(e, dict)
                      and str(e.get("name", "")).lower()[:10] == size.lower()[:10])
        return ["VM size %s is not offered for compute clusters in %s%s (list them: az ml compute list-sizes)"
                % (size, region, "; similar: " + ", ".join(near[:5]) if near else "")]
    if tier == "low_priority" and facts.low_priority is False:
        return ["VM size %s cannot run on low-priority nodes in %s: use --tier dedicated or another size"
                % (size, region)]
    return []


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


class UsageFacts(NamedTuple):
    name: str
    current: Optional[int]
    limit: Optional[int]


def subscription_usages(usages: List[Dict[str, Any]]) -> Dict[str, UsageFacts]:
    """The region's quotas (not a workspace's or a cluster's share of them),
    by normalised name; values from `az ml compute list-usage` or ARM."""
    out = {}
    for u in usages:
        if not isinstance(u, dict) or "/workspaces/" in str(u.get("id", "")).lower():
            continue
        name = u.get("name") or {}
        text = name.get("value") if isinstance(name, dict) else name
        if text:
            out[_key(str(text))] = UsageFacts(str(text), _pick(u, "current_value", "currentValue"), u.get("limit"))
    return out


def quota_problems(usages: Dict[str, UsageFacts], facts: SizeFacts, nodes: int, tier: str,
                   nodes_held: int = 0) -> Tuple[List[str], List[str]]:
    """(problems, notes): whether the region's free vCPUs cover NODES nodes
    of the size (less the nodes the cluster already holds), with numbers."""
    need = max(0, nodes - nodes_held) * (facts.vcpus or 0)
    kind = "LowPriority" if tier == "low_priority" else "Dedicated"
    family = _key(facts.family or "")
    wanted = [_key("Total Cluster %s Regional vCPUs" % kind)]
    if family:
        wanted.append(family + _key("Cluster %s vCPUs" % kind))
    problems, notes = [], []
    for key in wanted:
        u = usages.get(key)
        if u is None or u.current is None or u.limit is None:
            notes.append("no quota figure for %s: not checked" % (u.name if u else key))
            continue
        if u.limit < 0:  # no limit of its own (low priority has one regional quota)
            continue
        free = u.limit - u.current
        if need > free:
            problems.append("%s: the job needs %d node(s) x %d vCPUs = %d, but %d of the %d are in use (%d free)"
                            % (u.name, max(0, nodes - nodes_held), facts.vcpus or 0, need, u.current, u.limit, free))
    return problems, notes


# ---- the service's errors, explained ---------------------------------------------

def explain(text: str, opts: argparse.Namespace, size: str, tier: str) -> Optional[Tuple[str, str]]:
    """Known failure modes in a service error -> (kind, explanation)."""
    scope = "--resource-group %s --workspace-name %s" % (shlex.quote(opts.resource_group),
                                                         shlex.quote(opts.workspace))
    if re.search(r"quota|JobNodeCountExceedsCoreQuota|cannot accom+odate", text, re.I):
        return "quota", (
            "the subscription's vCPU quota in this region is too small for the request (%d node(s) of %s, %s). "
            "See usage and limits with: az ml compute list-usage %s --output table (or Quotas in Azure ML "
            "studio). Then ask for more quota for that VM family%s, or use a smaller --vm-size or fewer "
            "--nodes / --max-nodes." % (opts.nodes, size, tier, scope,
                                        " (low-priority cores are one quota across families)"
                                        if tier == "low_priority" else ""))
    if re.search(r"ScopeLocked|resource lock|\block(ed)?\b", text, re.I):
        return "lock", lock_explanation(opts.resource_group)
    if re.search(r"already (exists|in use|taken)|not unique|must be unique|unique across|NameNotAvailable|"
                 r"name is not available|name .*(is )?(already )?taken", text, re.I):
        return "name-taken", (
            "the name %r is taken: compute names must be unique among all computes in the Azure region, "
            "other workspaces' included. Choose another --cluster." % opts.cluster)
    if re.search(r"ComputeNameInvalid|(invalid|not valid)\W+(compute )?name|name\W.{0,60}(is invalid|is not valid|"
                 r"must start|must be between|can include)|between \d+ and \d+ characters", text, re.I):
        return "name-invalid", (
            "the service refused the name %r. Compute names: %d to %d letters, digits and hyphens, starting "
            "with a letter, with a letter somewhere after every hyphen, unique in the region." %
            (opts.cluster, NAME_MIN, NAME_MAX))
    if re.search(r"vm ?size.{0,80}(not (supported|available|valid|found))|InvalidVmSize|"
                 r"(not supported|not available) in (this|the) region", text, re.I):
        return "vm-size", ("the VM size %s cannot be used here; list the sizes available to the workspace's "
                           "region with: az ml compute list-sizes %s --output table" % (size, scope))
    return None


def lock_explanation(resource_group: str) -> str:
    return ("the cluster is resizing at 0 -> 0 nodes and not moving. The usual cause is a resource lock "
            "(e.g. a delete lock) on the workspace's resource group, which blocks scaling. List locks with: "
            "az lock list --resource-group %s --output table. Remove the lock from the resource group and lock "
            "individual resources instead, but never the ones named *-azurebatch-cloudservicenetworksecuritygroup, "
            "*-azurebatch-cloudservicepublicip or *-azurebatch-cloudserviceloadbalancer." % shlex.quote(resource_group))


def node_summary(view: Dict[str, Any]) -> str:
    """'2 nodes: 1 running, 1 preparing' from the ARM view."""
    counts = view.get("nodes") or {}
    parts = ["%d %s" % (counts[s], s) for s in NODE_STATES if counts.get(s)]
    text = "%d node(s)" % (view.get("current") or 0)
    if view.get("allocation") == "Resizing":
        text += ", resizing to %d" % (view.get("target") or 0)
    return text + (": " + ", ".join(parts) if parts else "")


# ---- the cluster, through az -------------------------------------------------------

class Cluster:
    """Makes sure the cluster exists as requested, through az ml or az rest."""

    def __init__(self, plan: Plan, cmds: Commands, runner: Runner, rest_mode: bool) -> None:
        self.plan, self.cmds, self.az, self.o = plan, cmds, runner, plan.o
        self.rest_mode = rest_mode
        self.name = self.o.cluster
        self._sub_id = self.o.subscription if self.o.subscription and GUID.match(self.o.subscription) else None
        self._location: Optional[str] = self.o.location
        self.have: Optional[Dict[str, Any]] = None

    def scope_text(self) -> str:
        return "--resource-group %s --workspace-name %s" % (shlex.quote(self.o.resource_group),
                                                            shlex.quote(self.o.workspace))

    def sub_id(self) -> str:
        """The subscription for ARM URLs: the id given, else az rest's own
        {subscriptionId} token; a subscription given by name is looked up."""
        if self._sub_id:
            return self._sub_id
        if not self.o.subscription:
            return "{subscriptionId}"
        return self.real_sub_id()

    def real_sub_id(self) -> str:
        if not self._sub_id:
            r = self.az.run(self.cmds.account_show())
            sid = r.out.strip()
            if r.rc != 0 or not GUID.match(sid):
                raise Failure("cannot tell the subscription id: %s" % first_line(r.err), detail=indent(r.err))
            self._sub_id = sid
        return self._sub_id

    def location(self) -> str:
        """The cluster's region: --location, the cluster's, or the workspace's."""
        if not self._location and self.have and self.have.get("location"):
            self._location = str(self.have["location"])
        if not self._location:
            ws = self.az.json(self.cmds.rest("get", self.cmds.workspace_url(self.sub_id())), "reading the workspace")
            location = ws.get("location") if isinstance(ws, dict) else None
            if not location:
                raise Failure("cannot tell the workspace's location: give --location")
            self._location = str(location)
        return self._location

    def get(self) -> Optional[Dict[str, Any]]:
        """The cluster's settings, or None where it does not exist."""
        cmd = self.cmds.rest("get", self.cmds.compute_url(self.name, self.sub_id())) if self.rest_mode \
            else self.cmds.compute_show(self.name)
        r = self.az.run(cmd)
        if r.rc != 0:
            missing = r"not found|could not be found|does not exist"
            if re.search(r"workspace[^\n]{0,80}(%s)" % missing, r.err, re.I) and \
                    not re.search(r"computes/|\b%s\b" % re.escape(self.name), r.err, re.I):
                raise Failure("workspace %r not found in resource group %r: %s"
                              % (self.o.workspace, self.o.resource_group, first_line(r.err)), detail=indent(r.err))
            if is_not_found(r.err):
                return None
            raise Failure("cannot look up cluster %r: %s" % (self.name, first_line(r.err)), detail=indent(r.err))
        data = parse_json(r.out, "cluster %s" % self.name)
        ctype = (data.get("properties") or {}).get("computeType") if self.rest_mode else data.get("type")
        if ctype and str(ctype).lower() != "amlcompute":
            raise Failure("%r is a %s, not a compute cluster (AmlCompute): choose another --cluster"
                          % (self.name, ctype), EXIT_CLUSTER)
        return from_rest(data) if self.rest_mode else from_ml(data)

    def view(self) -> Optional[Dict[str, Any]]:
        """The ARM view (allocation, node states, node errors); None if unavailable."""
        try:
            r = self.az.run(self.cmds.rest("get", self.cmds.compute_url(self.name, self.sub_id())))
            return from_rest(json.loads(r.out)) if r.rc == 0 else None
        except (Failure, ValueError, AttributeError):
            return None

    def resolve(self) -> Decision:
        """Reads the cluster and decides what to do with it; changes nothing."""
        self.have = self.get()
        asked = asked_settings(self.o)
        if self.have is not None:
            h = self.have
            log.info("cluster %s exists (%s, %s, %s..%s nodes, state %s%s)", self.name, h["size"], h["tier"],
                     h["min_instances"], h["max_instances"], h["state"],
                     "" if made_by_us(h) else "; not created by %s" % PROG)
            for d in differences(h, asked, self.rest_mode):
                log.info("  %s: cluster has %s, requested %s%s", d.setting, d.have, d.want,
                         "" if d.updatable else " (cannot be changed)")
            self.plan.vm_size = str(h["size"] or self.plan.vm_size)
        decision = decide(self.have, asked, self.o.nodes if not self.o.provision_only else 0, self.o.yes,
                          self.o.keep_existing, self.rest_mode, self.name, self.scope_text())
        if decision.action == "use":
            log.info("%scluster %s: used as it is", "--keep-existing: " if decision.diffs else "", self.name)
        return decision

    def tier(self) -> str:
        return (self.have or {}).get("tier") or self.plan.new_cluster["tier"]

    def preflight(self) -> None:
        """Before anything is created or changed: the VM size exists in the
        region (and on low priority, if asked), and the quota covers the job.
        A list az cannot give (permissions, say) leaves its check undone."""
        try:
            self._check_size_and_quota()
        except Failure as f:
            if f.code == EXIT_CLUSTER:
                raise
            log.warning("pre-flight: %s: the VM size and the quota are not checked", f)

    def _check_size_and_quota(self) -> None:
        size, tier = self.plan.vm_size, self.tier()
        sizes = self._list("sizes")
        if not sizes:
            log.warning("pre-flight: az listed no VM sizes for the region: the size and the quota are not checked")
            return
        facts = find_size(sizes, size)
        if facts is not None and (facts.vcpus is None or facts.low_priority is None) and not self.rest_mode:
            # Recent az ml versions print only name, family and gpus: ask ARM.
            sizes = self._list("sizes", force_rest=True)
            facts = find_size(sizes, size) or facts
        region = self._location or (self.have or {}).get("location") or "the workspace's region"
        problems = size_problems(facts, size, tier, region, sizes)
        if problems:
            raise Failure(problems[0], EXIT_CLUSTER)
        if self.o.provision_only or facts is None or not facts.vcpus:
            return
        usages = subscription_usages(self._list("usages"))
        if not self.rest_mode and all(u.current is None for u in usages.values()):
            usages = subscription_usages(self._list("usages", force_rest=True))
        held = 0
        if self.have is not None:
            v = self.view()
            held = (v or {}).get("current") or 0
        problems, notes = quota_problems(usages, facts, self.o.nodes, tier, held)
        for n in notes:
            log.warning("quota: %s", n)
        if problems:
            raise Failure("not enough quota for %d node(s) of %s (%s) in %s: %s. See az ml compute list-usage %s "
                          "--output table; ask for more quota, or use fewer --nodes or another --vm-size"
                          % (self.o.nodes, size, tier, self.location(), "; ".join(problems), self.scope_text()),
                          EXIT_CLUSTER)
        log.info("pre-flight: %s is offered in %s (%d vCPUs); the quota covers %d node(s)", size, self.location(),
                 facts.vcpus, self.o.nodes)

    def _list(self, what: str, force_rest: bool = False) -> List[Dict[str, Any]]:
        if self.rest_mode or force_rest:
            url: Optional[str] = self.cmds.location_url("vmSizes" if what == "sizes" else "usages", self.location(),
                                                        self.sub_id())
            items: List[Dict[str, Any]] = []
            for _ in range(20):  # az rest does not follow nextLink
                if not url:
                    break
                page = self.az.json(self.cmds.rest("get", url), "listing the region's %s" % what)
                items += (page.get("value") or []) if isinstance(page, dict) else []
                url = page.get("nextLink") if isinstance(page, dict) else None
            return items
        loc = self.o.location
        cmd = self.cmds.list_sizes(loc) if what == "sizes" else self.cmds.list_usage(loc)
        data = self.az.json(cmd, "az ml compute list-%s" % ("sizes" if what == "sizes" else "usage"))
        return data if isinstance(data, list) else []

    # -- changes
    def apply(self, decision: Decision) -> None:
        if decision.action == "create":
            self.create()
        elif decision.action == "update":
            self.update(decision.changes)
        elif self.have and self.have["state"] in ("Creating", "Updating"):
            self.wait("provisioning")
        elif self.have and self.have["state"] != "Succeeded":
            raise self.failure("cluster %s is in state %s" % (self.name, self.have["state"]), self.have)

    def failure(self, message: str, have: Dict[str, Any]) -> Failure:
        """A cluster failure with the service's full error: az ml prints only
        an error code, so the messages come from ARM."""
        texts = list(have.get("errors") or [])
        if not self.rest_mode:
            v = self.view()
            if v:
                texts = (v.get("errors") or texts) + (v.get("node_errors") or [])
        text = "\n".join(texts) or "(the service gave no error)"
        found = explain(text, self.o, self.plan.vm_size, self.tier())
        return Failure("%s: %s" % (message, found[1]) if found else message, EXIT_CLUSTER, indent(text))

    def create(self) -> None:
        s = self.plan.new_cluster
        log.info("cluster %s does not exist: creating it (%s, %s, %d..%d nodes)", self.name, s["size"], s["tier"],
                 s["min_instances"], s["max_instances"])
        self.plan.write_compute()
        if self.rest_mode:
            sub = self.real_sub_id() if self.o.vnet else None
            body = self.plan.compute_rest_body(self.location(), sub)
            path = self.plan.folder.write_text("compute-rest.json", json.dumps(body, indent=2) + "\n")
            cmd = self.cmds.rest("put", self.cmds.compute_url(self.name, self.sub_id()), str(path))
        else:
            cmd = self.cmds.compute_create(str(self.plan.folder.file("compute.yml")))
        r = self.az.run(cmd)
        if r.rc != 0:
            raise self._call_failure("creating cluster %s failed" % self.name, r.err)
        self.wait("provisioning")

    def update(self, changes: Dict[str, Any]) -> None:
        log.info("updating cluster %s: %s", self.name, ", ".join("%s=%s" % kv for kv in changes.items()))
        if self.rest_mode:
            h = self.have or {}
            scale = {"maxNodeCount": changes.get("max_instances", h.get("max_instances")),
                     "minNodeCount": changes.get("min_instances", h.get("min_instances")),
                     "nodeIdleTimeBeforeScaleDown": iso_duration(changes.get(
                         "idle_time_before_scale_down", h.get("idle_time_before_scale_down") or 120))}
            body = {"properties": {"properties": {"scaleSettings": scale}}}
            path = self.plan.folder.write_text("compute-update.json", json.dumps(body, indent=2) + "\n")
            cmd = self.cmds.rest("patch", self.cmds.compute_url(self.name, self.sub_id()), str(path))
        else:
            identity = changes.get("identity")
            cmd = self.cmds.compute_update(self.name, changes, identity[0] if identity else None,
                                           identity[1] if identity else None)
        r = self.az.run(cmd)
        if r.rc != 0:
            raise self._call_failure("updating cluster %s failed" % self.name, r.err)
        self.wait("update")

    def _call_failure(self, message: str, err: str) -> Failure:
        found = explain(err, self.o, self.plan.vm_size, self.tier())
        return Failure("%s: %s" % (message, found[1]) if found else message, EXIT_CLUSTER,
                       indent(err) if err.strip() else None)

    def wait(self, what: str) -> Dict[str, Any]:
        start = time.monotonic()
        last, heartbeat = None, start
        while True:
            have = self.get()
            elapsed = time.monotonic() - start
            state = have["state"] if have else "(not visible yet)"
            if state != last or time.monotonic() - heartbeat >= 60:
                log.info("cluster %s: %s (%d s)", self.name, state, elapsed)
                last, heartbeat = state, time.monotonic()
            if have and state == "Succeeded":
                self.have = have
                return have
            if have and state in ("Failed", "Canceled", "Deleting"):
                raise self.failure("%s of cluster %s ended %s" % (what, self.name, state), have)
            if elapsed > self.o.provision_timeout:
                raise Failure("cluster %s still %s after %d s: see it in Azure ML studio, or wait longer with "
                              "--provision-timeout" % (self.name, state, elapsed), EXIT_CLUSTER)
            time.sleep(self.o.poll_seconds)
