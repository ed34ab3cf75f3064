#!/bin/sh
# scripts/batchscore-submit without a cloud. A fake az (tests/submit/fake-az)
# first on PATH answers with the shapes the real CLI prints (its answers are
# made by azure-ai-ml's own classes: scripts/make-az-fixtures) and plays the
# service's side of each story. Checked here: every validation rule, --dry-run
# (and what it writes), the stories (cluster absent, existing, shared; quota;
# resize stuck at 0 -> 0; invalid or taken name; preemption, lost node,
# interruption, failure; stalled jobs; earlier runs; no ml extension), odd
# values reaching az and the job's shell intact, one check per numbered point
# of the helper's design ("point N: ..."), and the pytest tests of the
# package's pure parts (tests/submit/test_*.py). Where some python3 can import
# azure.ai.ml, the generated YAML is also loaded by the Azure ML SDK (offline)
# and the stored answers are compared with what that SDK makes.
# Exercises scripts and tools, not batchscore's C code (tests/tools-lib.sh).
. "$(dirname "$0")/tools-lib.sh"
# The helper's interpreter: a python3 with PyYAML, its one non-standard need.
PY=
for cand in /usr/bin/python3 python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys, yaml; sys.exit(sys.version_info < (3, 8))' \
    2>/dev/null; then
    PY=$("$cand" -c 'import sys; print(sys.executable)')
    break
  fi
done
[ -n "$PY" ] || { echo "SKIP: no python3 (3.8 or newer) with PyYAML (apt-get install python3-yaml)"; exit 77; }
HELPER=$top_srcdir/scripts/batchscore-submit
FAKE_AZ_SCRIPT=$top_srcdir/tests/submit/fake-az
WORK=$top_builddir/tests/scratch/submit
rm -rf "$WORK"
mkdir -p "$WORK/bin" "$WORK/nobin" "$WORK/azure"
# The fake az runs through python3, so it works even where the source tree
# lost its executable bits.
printf '#!/bin/sh\nexec "$FAKE_AZ_PY" "$FAKE_AZ_SCRIPT" "$@"\n' >"$WORK/bin/az"
chmod +x "$WORK/bin/az"
FAKE_AZ_PY=$PY
export FAKE_AZ_PY FAKE_AZ_SCRIPT
PATH=$WORK/bin:$PATH
export PATH PYTHONDONTWRITEBYTECODE=1
export BATCHSCORE_SUBMIT_POLL_SECONDS=0.01 BATCHSCORE_SUBMIT_STUCK_SECONDS=0.2
export BATCHSCORE_SUBMIT_PROVISION_TIMEOUT=30
# No workspace defaults from this machine's az configuration.
export AZURE_CONFIG_DIR=$WORK/azure
unset AZURE_DEFAULTS_GROUP AZURE_DEFAULTS_WORKSPACE AZURE_DEFAULTS_LOCATION
unset FAKE_AZ_CLUSTER FAKE_AZ_SET FAKE_AZ_SCENARIO FAKE_AZ_JOBS FAKE_AZ_USAGE

: >"$WORK/model.json"
: >"$WORK/features.h5"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/key" >/dev/null 2>&1 ||
  { echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests test" >"$WORK/key.pub"
    printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n' >"$WORK/key"; }
UAMI=/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/bs-id
SUBNET_ID=/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/vn/subnets/sn

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

# bs CASE ARGS...: runs the helper in a fresh case directory D (its own fake
# az state and log, and the helper's working directory) with the base
# options, then ARGS (which win); sets rc, with D/out, D/err and D/az.log
# (one JSON argv a line).
n=0
newcase() {
  n=$((n + 1))
  D=$WORK/case$n
  mkdir -p "$D/state"
  export FAKE_AZ_STATE="$D/state" FAKE_AZ_LOG="$D/az.log"
  : >"$D/az.log"
}
bs() {
  newcase
  printf '%s\n' "$*" >"$D/cmd"
  # Whether the fake az waits for the helper to stream a job's log.
  FAKE_AZ_STREAMS=1
  case " $* " in *" --no-stream "*) FAKE_AZ_STREAMS=0 ;; esac
  export FAKE_AZ_STREAMS
  # A hung helper (a log stream never stopped) fails the case, not CI.
  (cd "$D" && timeout 300 "$PY" "$HELPER" -g rg -w ws --cluster bs-cpu --model "$WORK/model.json" \
    --input "$WORK/features.h5" --run-name t1 --work-dir "$D/files" --output-dir "$D/dl" \
    "$@" >"$D/out" 2>"$D/err")
  rc=$?
}

# calls: the recorded az command lines, shell-quoted, one a line.
calls() {
  "$PY" -c 'import json, shlex, sys
for line in open(sys.argv[1]):
    print(shlex.join(json.loads(line)))' "$D/az.log"
}
ncalls() { calls | grep -c -- "$1"; }

# expect WHAT RC CHECK...: the exit status, then each CHECK: err:TEXT or
# out:TEXT (in stderr / stdout), noerr:TEXT (in neither), calls:PATTERN=N (N
# recorded az command lines contain PATTERN), called:PATTERN (at least one),
# file:PATH (exists), yaml:FILE:PYEXPR (PYEXPR is true of the loaded FILE, d).
expect() {
  what=$1 want=$2
  shift 2
  bad=
  [ "$rc" = "$want" ] || bad="exit $rc, expected $want"
  for check in "$@"; do
    [ -n "$bad" ] && break
    case $check in
    err:*) grep -qF -- "${check#err:}" "$D/err" || bad="stderr lacks '${check#err:}'" ;;
    out:*) grep -qF -- "${check#out:}" "$D/out" || bad="stdout lacks '${check#out:}'" ;;
    noerr:*) ! grep -qF -- "${check#noerr:}" "$D/err" "$D/out" || bad="output has '${check#noerr:}'" ;;
    called:*) [ "$(ncalls "${check#called:}")" -gt 0 ] || bad="no az call matches '${check#called:}'" ;;
    calls:*)
      spec=${check#calls:}
      got=$(ncalls "${spec%=*}")
      [ "$got" = "${spec##*=}" ] || bad="$got az calls match '${spec%=*}', expected ${spec##*=}" ;;
    file:*) [ -e "${check#file:}" ] || bad="no file ${check#file:}" ;;
    yaml:*)
      spec=${check#yaml:}
      "$PY" -c 'import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)' "${spec%%:*}" "${spec#*:}" 2>/dev/null || bad="not true of ${spec%%:*}: ${spec#*:}" ;;
    esac
  done
  if [ -n "$bad" ]; then
    fail "$what: $bad"
    sed 's/^/    stderr: /' "$D/err" | tail -15
  else
    ok "$what"
  fi
}

# ---- validation: rejected before any az call (exit 2), accepted by --dry-run
reject() {
  what=$1 text=$2
  shift 2
  bs "$@"
  if [ "$rc" != 2 ]; then
    fail "reject $what: exit $rc, expected 2"
  elif [ -s "$D/az.log" ]; then
    fail "reject $what: az was called"
  elif ! grep -qF -- "$text" "$D/err"; then
    fail "reject $what: message lacks '$text': $(head -2 "$D/err")"
  else
    ok "reject $what: $(head -1 "$D/err" | cut -c1-110)"
  fi
}
accept() {
  what=$1
  shift
  bs --dry-run "$@"
  if [ "$rc" != 0 ]; then
    fail "accept $what: exit $rc: $(head -3 "$D/err")"
  elif [ -s "$D/az.log" ]; then
    fail "accept $what: --dry-run called az"
  else
    ok "accept $what"
  fi
}

for name in mpi-cluster test-a0 test-0a Abc a-b-c a123456789012345 cpu-cluster-a; do
  accept "cluster name $name" --cluster "$name"
done
reject "name too short" "must be 3 to 16 characters" --cluster ab
reject "name too long" "must be 3 to 16 characters" --cluster a1234567890123456
reject "name starts with a digit" "must start with a letter" --cluster 1bad
reject "name starts with a hyphen" "must start with a letter" --cluster=-abc
reject "name with underscore" "only letters, digits and hyphens" --cluster bad_name
reject "name with a dot" "only letters, digits and hyphens" --cluster bad.name
reject "name ends with hyphen" "a letter somewhere after every hyphen" --cluster test-
reject "name test-0" "a letter somewhere after every hyphen" --cluster test-0
reject "name test-01" "a letter somewhere after every hyphen" --cluster test-01
reject "name cpu-cluster-1" "a letter somewhere after every hyphen" --cluster cpu-cluster-1
reject "reserved name local" "the name is reserved" --cluster local
reject "reserved name AmlCompute" "the name is reserved" --cluster AmlCompute
reject "no cluster" "--cluster is required" --cluster ''

accept "min 0 max 1" --min-nodes 0 --max-nodes 1
accept "min = max = nodes" --min-nodes 3 --max-nodes 3 --nodes 3
accept "nodes = max" --max-nodes 4 --nodes 4
accept "nodes above the new-cluster default without --max-nodes" --nodes 6
reject "negative min" "--min-nodes -1: must be 0 or more" --min-nodes -1
reject "max 0" "--max-nodes 0: must be at least 1" --max-nodes 0 --nodes 0
reject "min > max" "--min-nodes 3 is more than --max-nodes 2" --min-nodes 3 --max-nodes 2 --nodes 1
reject "nodes > max" "--nodes 5 is more than --max-nodes 4" --max-nodes 4 --nodes 5
reject "nodes 0" "a job needs at least 1 node" --nodes 0
reject "nodes over the MPI limit" "at most 100 nodes" --max-nodes 200 --nodes 101
reject "non-integer nodes" "invalid int value" --nodes two
accept "ranks per node 8" --ranks-per-node 8
reject "ranks per node 0" "--ranks-per-node 0: must be at least 1" --ranks-per-node 0
reject "ranks per node -2" "--ranks-per-node -2: must be at least 1" --ranks-per-node -2
reject "negative idle" "--idle-seconds -1" --idle-seconds -1

accept "tier low_priority" --tier low_priority
accept "tier Dedicated" --tier Dedicated
reject "tier lowpriority" "(it is spelled low_priority)" --tier lowpriority
reject "tier spot" "unknown --tier 'spot': use dedicated or low_priority" --tier spot

accept "system identity" --identity system
accept "user identity" --identity user --identity-id "$UAMI"
accept "identity id alone" --identity-id "$UAMI"
reject "user identity without id" "--identity user needs --identity-id" --identity user
reject "system identity with id" "--identity-id is only for --identity user" --identity system --identity-id "$UAMI"
reject "identity id not a resource id" "is not a user-assigned identity resource id" --identity-id bs-id
reject "unknown identity" "unknown --identity 'both'" --identity both

accept "ssh with a public key" --ssh --ssh-key "$WORK/key.pub"
reject "ssh without key" "--ssh needs --ssh-key" --ssh
reject "ssh with a private key" "is a private key" --ssh --ssh-key "$WORK/key"
reject "ssh key without ssh" "--ssh-key is only used with --ssh" --ssh-key "$WORK/key.pub"

accept "vnet and subnet" --vnet vn --subnet sn
accept "subnet id" --subnet "$SUBNET_ID"
reject "vnet without subnet" "--vnet needs --subnet" --vnet vn
reject "subnet name without vnet" "needs --vnet NAME" --subnet sn
reject "subnet id with vnet" "leave out --vnet" --vnet vn --subnet "$SUBNET_ID"

reject "missing model file" "--model $WORK/nope.json: no such file" --model "$WORK/nope.json"
reject "no resource group" "--resource-group (or az configure --defaults group=RG) is required" --resource-group ''
accept "input with dataset" --input "$WORK/features.h5:/grp/x"
accept "input URI with dataset" --input "azureml://datastores/workspaceblobstore/paths/f.h5:/features"
reject "batchscore --output after --" "--output after '--' is set by batchscore-submit" -- --output x.h5
reject "batchscore --write-mode after --" "--write-mode after '--'" -- --write-mode=parallel
reject "bad --env" "--env 'A B=1'" --env "A B=1"
reject "bad run name" "--run-name 'a/b'" --run-name a/b

# several problems are all reported at once
bs --cluster test-0 --tier spot --nodes 9 --max-nodes 4
if [ "$rc" = 2 ] && grep -qF "after every hyphen" "$D/err" && grep -qF "unknown --tier" "$D/err" &&
  grep -qF -- "--nodes 9 is more than --max-nodes 4" "$D/err"; then
  ok "all validation errors reported together"
else
  fail "all validation errors reported together: $(cat "$D/err")"
fi

# a config file gives settings; the command line wins
cat >"$WORK/cluster.conf" <<EOF
# cluster settings
tier = low_priority
max-nodes = 6
vm_size = Standard_F8s_v2
identity-id = $UAMI
ssh = false
EOF
bs --config "$WORK/cluster.conf" --max-nodes 5 --dry-run
expect "config file" 0 "out:tier: low_priority" "out:max_instances: 5" "out:size: Standard_F8s_v2" \
  "out:resource_id: $UAMI"
printf 'colour = blue\n' >"$WORK/bad.conf"
bs --config "$WORK/bad.conf" --dry-run
expect "config file with an unknown setting" 2 "err:line 1: unknown setting 'colour'"

# ---- --help and --dry-run ----------------------------------------------------
"$PY" "$HELPER" --help >"$WORK/help" 2>&1
if grep -qF "examples:" "$WORK/help" && grep -qF -- "--dry-run" "$WORK/help" &&
  grep -qF -- "--ranks-per-node" "$WORK/help" && grep -qF "exit status" "$WORK/help"; then
  ok "--help has the options, examples and exit status"
else
  fail "--help: $(head -5 "$WORK/help")"
fi

bs --dry-run --nodes 2 --ranks-per-node 4 --tier low_priority --max-resubmits 5 --max-nodes 4 -- --threads 2
expect "dry-run prints the plan, runs nothing" 0 \
  "out:type: amlcompute" "out:tier: low_priority" "out:max_instances: 4" \
  "out:ssh_public_access_enabled: false" "out:type: command" "out:instance_count: 2" \
  "out:process_count_per_instance: 4" "out:type: mpi" "out:--resume --threads 2" \
  "out:FROM mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04" "out:--enable-parallel" \
  "out:scripts/build" "out:az extension show --name ml" "out:az ml compute show --name bs-cpu" \
  "out:az ml compute create --file $D/files/compute.yml" "out:az ml compute update --name bs-cpu" \
  "out:az ml job create --file $D/files/job.yml --name t1-1" "out:az ml job stream --name t1-1" \
  "out:az ml job show --name t1-1" "out:az ml job create --file $D/files/job.yml --name t1-2" \
  "out:at most 5 times" "out:az ml job download --name t1-1 --output-name scores --download-path $D/dl" \
  "out:paths/batchscore/t1/" "noerr:--write-mode"
[ -s "$D/az.log" ] && fail "dry-run: az was called"

bs --dry-run --use-rest --subscription 00000000-1111-2222-3333-444444444444 --provision-only
expect "dry-run with az rest" 0 "out:az rest --method get --url" \
  "out:az rest --method put --url 'https://management.azure.com/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws/computes/bs-cpu?api-version=2025-09-01' --body @$D/files/compute-rest.json" \
  "out:\"vmPriority\": \"Dedicated\"" "out:\"nodeIdleTimeBeforeScaleDown\": \"PT2M\"" "out:--provision-only: stop here"

# ---- the service's stories (fake az) -------------------------------------------
bs
expect "absent cluster: pre-flight, created, waited for, job run, scores downloaded" 0 \
  "err:pre-flight: Standard_D4s_v3 is offered in westeurope (4 vCPUs)" \
  "err:cluster bs-cpu does not exist: creating it" "err:cluster bs-cpu: Creating" \
  "err:cluster bs-cpu: Succeeded" "err:submitted job t1-1" "err:job t1-1: Queued" "err:job t1-1: Completed" \
  "err:scores: $D/dl/named-outputs/scores/scores.h5" "out:Execution Summary" \
  "calls:ml compute create --file $D/files/compute.yml --resource-group rg --workspace-name ws --no-wait=1" \
  "calls:ml job create=1" "calls:ml job stream --name t1-1=1" \
  "calls:ml job download --name t1-1 --output-name scores --download-path $D/dl=1" \
  "yaml:$D/files/compute.yml:d['tags'] == {'made-by': 'batchscore-submit'}"
[ -s "$D/files/environment/batchscore-src.tar.gz" ] &&
  tar tzf "$D/files/environment/batchscore-src.tar.gz" | grep -qx 'batchscore/configure.ac' ||
  fail "the source tarball for the image is missing or lacks configure.ac"

export FAKE_AZ_CLUSTER=ours
bs
expect "existing cluster, made by the helper, no sizing options: used as it is" 0 "err:used as it is" \
  "calls:ml compute create=0" "calls:ml compute update=0" "calls:ml job create=1"
bs --max-nodes 8
expect "existing cluster made by the helper, --max-nodes: updated without --yes" 0 \
  "err:max_instances: cluster has 4, requested 8" "err:updating cluster bs-cpu: max_instances=8" \
  "calls:ml compute update --name bs-cpu --resource-group rg --workspace-name ws --max-instances 8 --output json=1" \
  "calls:ml job create=1"
export FAKE_AZ_SET='{"size": "STANDARD_DS3_V2", "max_instances": 2}'
bs --vm-size Standard_D4s_v3 --tier low_priority --max-nodes 4
expect "existing cluster, fixed differences: refused, nothing changed" 3 \
  "err:size: cluster has STANDARD_DS3_V2, requested Standard_D4s_v3 (cannot be changed)" \
  "err:tier: cluster has dedicated, requested low_priority (cannot be changed)" \
  "err:max_instances: cluster has 2, requested 4" "err:cannot be changed on an existing cluster (size, tier)" \
  "err:az ml compute delete --name bs-cpu" "err:--keep-existing" \
  "calls:ml compute update=0" "calls:ml job create=0"
bs --vm-size Standard_D4s_v3 --tier low_priority --keep-existing --nodes 2
expect "existing cluster, --keep-existing: used as it is" 0 "err:--keep-existing: cluster bs-cpu: used as it is" \
  "calls:ml compute update=0" "calls:ml job create=1"
bs --keep-existing --nodes 3
expect "--keep-existing with more nodes than the cluster has" 3 "err:scales to at most 2" "calls:ml job create=0"
unset FAKE_AZ_CLUSTER FAKE_AZ_SET

export FAKE_AZ_SCENARIO=quota-job
bs --nodes 2
expect "quota exceeded at job submission" 3 "err:submitting job t1-1 failed" "err:JobNodeCountExceedsCoreQuota" \
  "err:az ml compute list-usage" "calls:ml job create=1"

FAKE_AZ_SCENARIO=stuck
bs
expect "resize stuck at 0 -> 0: resource lock explained" 3 "err:resizing 0 -> 0 nodes" \
  "err:resource lock" "err:az lock list --resource-group rg --output table" \
  "err:azurebatch-cloudservicepublicip" "err:az ml job cancel --name t1-1" \
  "called:rest --method get --url 'https://management.azure.com/subscriptions/{subscriptionId}/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws/computes/bs-cpu?api-version=2025-09-01'" \
  "calls:ml job create=1"
FAKE_AZ_SCENARIO=lockerr
bs
expect "node errors while queued: explained" 3 "err:cannot get nodes" "err:ScopeLocked" "calls:ml job create=1"

FAKE_AZ_SCENARIO=badname
bs
expect "invalid name (service side)" 3 "err:creating cluster bs-cpu failed" "err:refused the name 'bs-cpu'" \
  "err:Compute name is invalid" "calls:ml job create=0"
FAKE_AZ_SCENARIO=taken
bs
expect "name taken in the region" 3 "err:the name 'bs-cpu' is taken" "err:unique among all computes in the Azure region" \
  "calls:ml job create=0"

FAKE_AZ_SCENARIO=preempted
export FAKE_AZ_CLUSTER=ours-lowpri
bs
expect "low-priority job preempted, resubmitted, completed" 0 "err:job t1-1 stopped: a node went away" \
  "err:Resubmitting (1 of 3)" "err:job t1-2: Completed" "out:PreemptionError" \
  "calls:ml job create --file $D/files/job.yml --name t1-1=1" \
  "calls:ml job create --file $D/files/job.yml --name t1-2=1" "calls:ml job download --name t1-2 --output-name=1"
FAKE_AZ_SCENARIO=preempted-always
bs --max-resubmits 2
expect "preempted every time: resubmissions bounded" 1 "err:Resubmitting (2 of 2)" \
  "err:--max-resubmits are used up" "err:--run-name t1" "calls:ml job create=3" "calls:--output-name=0"
unset FAKE_AZ_CLUSTER

FAKE_AZ_SCENARIO=failed
bs
expect "job failed (batchscore exit 1): reported, not resubmitted, secrets masked" 1 "err:job t1-1 failed" \
  "err:batchscore exited with status 1 (the run failed)" \
  "err:batchscore: input features.h5: dataset '/features' has 29 columns" "err:<redacted>" \
  "noerr:S3cr3tSAS" "noerr:eyJhbGciOiJSUzI1NiJ9" "calls:ml job create=1" "calls:--output-name=0"

FAKE_AZ_SCENARIO=noml
bs --provision-only
expect "no ml extension: cluster created with az rest" 0 "err:handling the cluster with az rest" \
  "err:cluster bs-cpu: Creating" "err:cluster bs-cpu is ready" \
  "calls:rest --method get --url 'https://management.azure.com/subscriptions/{subscriptionId}/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws?api-version=2025-09-01'=1" \
  "calls:rest --method put --url 'https://management.azure.com/subscriptions/{subscriptionId}/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws/computes/bs-cpu?api-version=2025-09-01' --body @$D/files/compute-rest.json=1" \
  "calls:ml compute=0"
"$PY" - "$D/files/compute-rest.json" <<'EOF' || fail "az rest body"
import json, sys
b = json.load(open(sys.argv[1]))
p = b["properties"]["properties"]
assert b["location"] == "westeurope", b
assert b["properties"]["computeType"] == "AmlCompute"
assert p["vmSize"] == "Standard_D4s_v3" and p["vmPriority"] == "Dedicated", p
assert p["scaleSettings"] == {"minNodeCount": 0, "maxNodeCount": 4, "nodeIdleTimeBeforeScaleDown": "PT2M"}, p
assert p["remoteLoginPortPublicAccess"] == "Disabled", p
EOF
bs
expect "no ml extension: the job cannot be submitted" 1 "err:az extension add --name ml" "calls:ml job=0"
unset FAKE_AZ_SCENARIO

newcase
PATH=$WORK/nobin "$PY" "$HELPER" -g rg -w ws --cluster bs-cpu --provision-only >"$D/out" 2>"$D/err"
rc=$?
expect "no az on PATH" 1 "err:the Azure CLI (az) is not on PATH"

# ---- values with spaces, quotes and $(...) stay one literal word ---------------
WEIRD="my sub 'x' \"y\" \$(touch $WORK/pwned) \`touch $WORK/pwned2\` ;&|"
mkdir -p "$WORK/dir with 'q' \$(x)"
WD="$WORK/dir with 'q' \$(x)/files"
bs --subscription "$WEIRD" --work-dir "$WD" -- --kernel "ref \$(touch $WORK/pwned3) 'a' \"b\""
expect "run with odd values" 0
"$PY" - "$D/az.log" "$WEIRD" "$WD" <<'EOF' && ok "odd values reach az as one literal argument" || fail "odd values reach az as one literal argument"
import json, sys
log, weird, wd = sys.argv[1:4]
calls = [json.loads(l) for l in open(log)]
ml = [c for c in calls if c[0] == "ml"]
assert ml, "no az ml calls"
for c in ml:
    assert c[c.index("--subscription") + 1] == weird, c
files = [c[c.index("--file") + 1] for c in ml if "--file" in c]
assert files == [wd + "/compute.yml", wd + "/job.yml"], files
EOF
for f in pwned pwned2 pwned3; do
  [ -e "$WORK/$f" ] && fail "a \$(...) or backquote in a value was executed ($f)"
done
# The job's command, with the ${{...}} placeholders replaced by paths the way
# Azure ML does (input names with spaces and quotes), run by a real shell:
# batchscore must get each value whole.
mkdir -p "$WORK/fakebs" "$WORK/mnt/in dir" "$WORK/mnt/out dir"
cat >"$WORK/fakebs/batchscore" <<EOF
#!/bin/sh
exec "$PY" -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "\$@"
EOF
chmod +x "$WORK/fakebs/batchscore"
"$PY" - "$WD/job.yml" "$WORK" <<'EOF' >"$WORK/jobcmd" || fail "job command: not found in job.yml"
import sys, yaml
work = sys.argv[2]
cmd = yaml.safe_load(open(sys.argv[1]))["command"]
cmd = cmd.replace("${{inputs.model}}", work + "/mnt/in dir/it's model.json")
cmd = cmd.replace("${{inputs.features}}", work + "/mnt/in dir/features (1).h5")
cmd = cmd.replace("${{outputs.scores}}", work + "/mnt/out dir")
print(cmd)
EOF
PATH=$WORK/fakebs:$PATH sh -c "$(cat "$WORK/jobcmd")" >"$WORK/jobargv" 2>&1
"$PY" - "$WORK/jobargv" "$WORK" <<'EOF' && ok "job command: every value is one word for the shell" || { fail "job command: $(cat "$WORK/jobargv")"; cat "$WORK/jobcmd"; }
import json, sys
lines = open(sys.argv[1]).read().splitlines()
got = json.loads(lines[0])
w = sys.argv[2]
want = ["--model", w + "/mnt/in dir/it's model.json", "--input", w + "/mnt/in dir/features (1).h5:/features",
        "--output", w + "/mnt/out dir/scores.h5", "--resume",
        "--kernel", "ref $(touch %s/pwned3) 'a' \"b\"" % w]
assert got == want, (got, want)
assert lines[1] == "batchscore-submit: rank 0: batchscore exit status 0", lines
EOF
[ -e "$WORK/pwned3" ] && fail "the job command executed a \$(...) from a batchscore argument"

# ---- one check per numbered point of the helper's design -------------------------
# point 1: an existing cluster keeps what was not asked for; a cluster the
# helper did not create changes only with --yes.
export FAKE_AZ_CLUSTER=team
bs --nodes 4
expect "point 1: a team's 2..20 cluster without sizing options: used as it is, nothing rewritten" 0 \
  "err:not created by batchscore-submit" "err:used as it is" "calls:ml compute update=0" "calls:ml job create=1"
bs --max-nodes 30
expect "point 1: changing a cluster the helper did not create needs --yes" 3 \
  "err:max_instances: cluster has 20, requested 30" "err:needs --yes" "calls:ml compute update=0" \
  "calls:ml job create=0"
bs --max-nodes 30 --yes
expect "point 1: with --yes only the asked setting changes" 0 \
  "calls:ml compute update --name bs-cpu --resource-group rg --workspace-name ws --max-instances 30 --output json=1" \
  "calls:--min-instances=0" "calls:--idle-time-before-scale-down=0"
bs --nodes 25
expect "point 1: more nodes than the shared cluster allows: refused, with the way out" 3 \
  "err:scales to at most 20: lower --nodes, or pass --max-nodes 25 --yes" "calls:ml compute update=0"
unset FAKE_AZ_CLUSTER

# point 2: az ml prints provisioning_errors as a code and states as
# "ProvisioningState.FAILED": the quota diagnosis still fires (from ARM's
# messages); NotResponding and Paused end instead of looping.
export FAKE_AZ_SCENARIO=quota
bs --min-nodes 1
expect "point 2: provisioning failed (SDK-shaped state and error code): quota explained" 3 \
  "err:provisioning of cluster bs-cpu ended Failed" "err:vCPU quota" \
  "err:az ml compute list-usage --resource-group rg --workspace-name ws --output table" \
  "err:vCPU quota of 0 and cannot accomodate" "calls:ml job create=0"
for s in notresponding paused; do
  FAKE_AZ_SCENARIO=$s
  bs
  expect "point 2: a job $s is reported after --stuck-seconds, not followed for ever" 1 \
    "err:has been $([ $s = paused ] && echo Paused || echo NotResponding) for" "err:az ml job cancel --name t1-1" \
    "calls:ml job create=1"
done
unset FAKE_AZ_SCENARIO

# point 3: YAML from a YAML library: values YAML 1.1 would read as dates,
# sexagesimal numbers or booleans stay strings.
bs --dry-run --run-name 2024-01-01 --env WINDOW=1:30 --env FLAG=yes --env HEX=0x1F --env TILDE='~' \
  --experiment 1e3
expect "point 3: odd values round-trip through job.yml" 0 \
  "yaml:$D/files/job.yml:d['display_name'] == '2024-01-01' and d['environment_variables']['WINDOW'] == '1:30'" \
  "yaml:$D/files/job.yml:d['environment_variables']['FLAG'] == 'yes' and d['environment_variables']['HEX'] == '0x1F'" \
  "yaml:$D/files/job.yml:d['environment_variables']['TILDE'] == '~' and d['experiment_name'] == '1e3'" \
  "yaml:$D/files/job.yml:d['tags'] == {'batchscore-run': '2024-01-01'}"

# point 4: a private, unpredictable work folder; files created exclusively.
export FAKE_AZ_SCENARIO=
newcase
mkdir -p "$D/tmp"
(cd "$D" && TMPDIR=$D/tmp "$PY" "$HELPER" -g rg -w ws --cluster bs-cpu --provision-only >"$D/out" 2>"$D/err")
rc=$?
made=$(ls "$D/tmp")
expect "point 4: the default work folder is new, private and not named after the run" 0 \
  "err:generated files are in $D/tmp/batchscore-submit-"
case $made in batchscore-submit-?*) ;; *) fail "point 4: work folder $made" ;; esac
[ "$(stat -c %a "$D/tmp/$made")" = 700 ] || fail "point 4: work folder mode $(stat -c %a "$D/tmp/$made")"
[ "$(stat -c %a "$D/tmp/$made/compute.yml")" = 600 ] || fail "point 4: compute.yml is not private"
ln -s "$WORK/azure" "$WORK/planted"
bs --dry-run --work-dir "$WORK/planted"
expect "point 4: a --work-dir that is a symlink (or not empty) is refused" 2 "err:is not an empty folder"
bs --dry-run --work-dir "$WORK"
expect "point 4: a --work-dir with files in it is refused" 2 "err:is not an empty folder"

# point 5: resubmission decided from the job's status and batchscore's exit
# statuses, with or without streaming, a lost node included.
for s in preempted node-lost interrupted; do
  for mode in --no-stream ""; do
    FAKE_AZ_SCENARIO=$s
    bs $mode
    expect "point 5: $s ${mode:-(streaming)}, dedicated nodes: resubmitted and completed" 0 \
      "err:job t1-1 stopped:" "err:Resubmitting (1 of 3)" "err:job t1-2: Completed" \
      "calls:ml job create=2" "called:ml job download --name t1-1 --download-path"
  done
done
FAKE_AZ_SCENARIO=crashed
bs --no-stream
expect "point 5: batchscore's status 70 (a bug): not resubmitted" 1 \
  "err:batchscore exited with status 70 (internal error or crash (a bug))" "calls:ml job create=1"
unset FAKE_AZ_SCENARIO

# point 6: an earlier --run-name whose job still runs is not joined.
export FAKE_AZ_JOBS='{"t1-1": "Running"}'
bs
expect "point 6: rerun while the run's job is still Running: refused, nothing created" 1 \
  "err:job t1-1 of run t1 is Running" "err:az ml job cancel --name t1-1" "calls:ml job create=0" \
  "calls:ml compute create=0"
FAKE_AZ_JOBS='{"t1-1": "Failed", "t1-2": "Completed"}'
bs
expect "point 6: rerun after the run's jobs ended: the next job continues its output" 0 \
  "err:run t1 has 2 earlier job(s)" "err:submitted job t1-3" "calls:ml job create=1"
unset FAKE_AZ_JOBS

# point 7: --dry-run --work-dir writes everything needed to submit by hand.
bs --dry-run --use-rest
expect "point 7: --dry-run --work-dir writes the files, the source tarball and the plan" 0 \
  "file:$D/files/compute.yml" "file:$D/files/job.yml" "file:$D/files/environment/Dockerfile" \
  "file:$D/files/environment/batchscore-src.tar.gz" "file:$D/files/compute-rest.json" "file:$D/files/plan.txt"
tar tzf "$D/files/environment/batchscore-src.tar.gz" >"$D/tarlist" 2>&1
grep -qx 'batchscore/src/main.c' "$D/tarlist" && grep -qx 'batchscore/scripts/build' "$D/tarlist" &&
  ! grep -q -e '^batchscore/data/' -e 'README' -e 'batchscore/tests/.*\.sh' "$D/tarlist" &&
  ok "point 7: the tarball has the build's files only" || fail "point 7: tarball: $(head -5 "$D/tarlist")"

# point 8: pre-flight before anything is created: the size exists in the
# region, the quota covers the nodes (numbers in the message).
bs --vm-size Standard_E4s_v5
expect "point 8: a VM size the region does not offer: refused before creating anything" 3 \
  "err:VM size Standard_E4s_v5 is not offered" "calls:ml compute create=0" "calls:ml job create=0"
bs --vm-size Standard_DS3_v2 --tier low_priority
expect "point 8: a size without low-priority capacity on low priority: refused" 3 \
  "err:cannot run on low-priority nodes" "calls:ml compute create=0"
export FAKE_AZ_USAGE='{"Standard DSv3 Family Cluster Dedicated vCPUs": 20}'
bs --nodes 2
expect "point 8: the quota does not cover the nodes: refused with the numbers" 3 \
  "err:the job needs 2 node(s) x 4 vCPUs = 8, but 20 of the 24 are in use (4 free)" \
  "called:ml compute list-usage" "called:/usages?api-version" "calls:ml compute create=0"
unset FAKE_AZ_USAGE
export FAKE_AZ_SCENARIO=nolist
bs
expect "point 8: a list az may not read leaves its check undone, with a warning" 0 \
  "err:warning: pre-flight: az ml compute list-sizes failed: (AuthorizationFailed)" \
  "err:the VM size and the quota are not checked" "calls:ml job create=1"
unset FAKE_AZ_SCENARIO

# point 9: registered models, reserved names, --env warning, quoted URIs,
# the REST fallback's body, clusters without public node IPs.
bs --dry-run --model azureml:bs-model:3 --model-file model.json --env TOKEN=x \
  --input "azureml://datastores/workspaceblobstore/paths/my dir/it's.h5:/features" \
  --subnet "$SUBNET_ID" --no-node-public-ip --use-rest
expect "point 9: registered model, --env warning, URI quoted, no public IPs, az rest body" 0 \
  "yaml:$D/files/job.yml:d['inputs']['model'] == {'type': 'custom_model', 'path': 'azureml:bs-model:3', 'mode': 'download'}" \
  "yaml:$D/files/job.yml:'\"\${{inputs.model}}/model.json\"' in d['command']" \
  "yaml:$D/files/compute.yml:d['enable_node_public_ip'] is False" \
  "err:--env values are stored in the job's definition" "err:TOKEN looks like one" \
  "out:\"enableNodePublicIp\": false" "out:\"disableLocalAuth\": true"
reject "point 9: reserved name serverless" "the name is reserved" --cluster serverless
reject "point 9: reserved name DataFactory" "the name is reserved" --cluster DataFactory
reject "point 9: an input URI that would break its quotes" "rename it" \
  --input 'azureml://datastores/workspaceblobstore/paths/a"$(x).h5'
reject "point 9: no public node IPs needs a subnet" "--no-node-public-ip needs --subnet" --no-node-public-ip

# point 10: one Open MPI in the image, ranks not pinned unless asked, no HDF5
# locks on FUSE, a CUDA image for GPU sizes, registered environments and
# prebuilt images used without a build.
bs --dry-run --vm-size Standard_NC24ads_A100_v4
expect "point 10: the image and the job's environment" 0 \
  "out:FROM mcr.microsoft.com/azureml/openmpi4.1.0-cuda11.8-cudnn8-ubuntu22.04" "out:--with-cuda=/usr/local/cuda" \
  "out:CC=mpicc ./configure" "noerr:libopenmpi-dev" "noerr:libhdf5-openmpi-dev" \
  "yaml:$D/files/job.yml:d['environment_variables']['OMPI_MCA_hwloc_base_binding_policy'] == 'none'" \
  "yaml:$D/files/job.yml:d['environment_variables']['HDF5_USE_FILE_LOCKING'] == 'FALSE'" \
  "yaml:$D/files/job.yml:d['environment_variables']['OMPI_MCA_oob_tcp_keepalive_time'] == '5'"
bs --dry-run --bind-ranks core --environment azureml:bs-env:7
expect "point 10: --bind-ranks and a registered environment (no build)" 0 \
  "yaml:$D/files/job.yml:d['environment'] == 'azureml:bs-env:7'" \
  "yaml:$D/files/job.yml:d['environment_variables']['OMPI_MCA_hwloc_base_binding_policy'] == 'core'"
[ -e "$D/files/environment" ] && fail "point 10: a registered environment still wrote a build context"
bs --dry-run --image myregistry.azurecr.io/batchscore:1.2
expect "point 10: a prebuilt image" 0 "yaml:$D/files/job.yml:d['environment'] == {'image': 'myregistry.azurecr.io/batchscore:1.2'}"

# point 11: workspace defaults as the other tools read them, what the
# cluster does while the job runs, batchscore's progress, node-hours, Ctrl-C.
newcase
mkdir -p "$D/azure" "$D/proj/sub"
printf '[defaults]\ngroup = rg\nworkspace = ws\n' >"$D/azure/config"
(cd "$D/proj/sub" && AZURE_CONFIG_DIR=$D/azure "$PY" "$HELPER" --cluster bs-cpu --model "$WORK/model.json" \
  --input "$WORK/features.h5" --run-name t1 --dry-run >"$D/out" 2>"$D/err")
rc=$?
expect "point 11: workspace from az configure --defaults" 0 "err:resource group rg from az's defaults" \
  "out:az ml compute show --name bs-cpu --resource-group rg --workspace-name ws"
printf '{"subscription_id": "00000000-1111-2222-3333-444444444444", "resource_group": "rg2", "workspace_name": "ws2"}\n' \
  >"$D/proj/config.json"
(cd "$D/proj/sub" && AZURE_CONFIG_DIR=$D/azure "$PY" "$HELPER" --cluster bs-cpu --model "$WORK/model.json" \
  --input "$WORK/features.h5" --run-name t1 --dry-run >"$D/out" 2>"$D/err")
rc=$?
expect "point 11: workspace from an Azure ML config.json in a parent folder" 0 "err:from $D/proj/config.json" \
  "out:--resource-group rg2 --workspace-name ws2 --subscription 00000000-1111-2222-3333-444444444444"
bs --nodes 2
expect "point 11: the cluster's nodes, batchscore's progress and node-hours are shown" 0 \
  "err:cluster bs-cpu: 2 node(s): 2 running; batchscore: " "err:node-hours: about"
newcase
export FAKE_AZ_SCENARIO=running
"$PY" - "$PY" "$HELPER" "$D" "$WORK" <<'EOF' >"$D/out" 2>"$D/err"
import os, signal, subprocess, sys, time
py, helper, d, work = sys.argv[1:5]
signal.signal(signal.SIGINT, signal.SIG_DFL)  # a background shell job ignores it; the helper must not
err = open(os.path.join(d, "err.helper"), "w")
p = subprocess.Popen([py, helper, "-g", "rg", "-w", "ws", "--cluster", "bs-cpu", "--model", work + "/model.json",
                      "--input", work + "/features.h5", "--run-name", "t1", "--work-dir", d + "/files",
                      "--on-interrupt", "cancel", "--no-download"], stdout=subprocess.DEVNULL, stderr=err, cwd=d)
deadline = time.time() + 60
while time.time() < deadline and "job t1-1: Running" not in open(os.path.join(d, "err.helper")).read():
    time.sleep(0.05)
p.send_signal(signal.SIGINT)
print(p.wait(timeout=60))
EOF
rc=$(cat "$D/out")
cp "$D/err.helper" "$D/err"
expect "point 11: Ctrl-C offers to cancel the job (--on-interrupt cancel)" 130 \
  "err:interrupted: job t1-1 canceled" "calls:ml job cancel --name t1-1=1"
unset FAKE_AZ_SCENARIO

# ---- the generated YAML, loaded by the Azure ML SDK (offline) -----------------
SDKPY=
for cand in ${AZURE_ML_PYTHON:-} "$top_builddir/build/venv-azure-ai-ml/bin/python" \
  "$top_srcdir/build/venv-azure-ai-ml/bin/python" python3 /usr/bin/python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import azure.ai.ml' >/dev/null 2>&1; then
    SDKPY=$cand
    break
  fi
done
if [ -z "$SDKPY" ]; then
  echo "note: azure-ai-ml is not importable by any python3 here (scripts/make-az-fixtures installs it):" \
    "SDK validation of the YAML and of the fake az's answers skipped"
else
  "$SDKPY" "$top_srcdir/tests/submit/az_answers.py" --check "$top_srcdir/tests/submit/answers" \
    >"$WORK/shapes.out" 2>&1 && ok "the fake az's answers have the shapes this azure-ai-ml prints" ||
    { fail "the fake az's answers differ from azure-ai-ml's:"; grep -v experimental "$WORK/shapes.out"; }
  bs --dry-run --work-dir "$WORK/sdk1/files" --nodes 2 --ranks-per-node 4 --input "$WORK/features.h5:/grp/x" \
    --run-name 2024-01-01 --env WINDOW=1:30
  D1=$WORK/sdk1/files
  bs --dry-run --work-dir "$WORK/sdk2/files" --tier low_priority --min-nodes 1 --max-nodes 8 --nodes 8 \
    --idle-seconds 1800 --identity-id "$UAMI" --vnet vn --subnet sn --ssh --ssh-key "$WORK/key.pub" \
    --env OMP_NUM_THREADS=2 --timeout-seconds 7200 --input-mode download --location westeurope \
    --use-rest --subscription 00000000-1111-2222-3333-444444444444 --model azureml:bs-model:3 \
    --input "azureml://datastores/workspaceblobstore/paths/f.h5:/features" -- --threads 2 --kernel "a b"
  D2=$WORK/sdk2/files
  bs --dry-run --work-dir "$WORK/sdk3/files" --identity system --subnet "$SUBNET_ID" --no-node-public-ip \
    --provision-only
  D3=$WORK/sdk3/files
  "$SDKPY" - "$D1" "$D2" "$D3" "$WORK" "$UAMI" <<'EOF' >"$WORK/sdk.out" 2>&1
import json, shlex, sys
from azure.ai.ml import __version__, load_compute, load_job
d1, d2, d3, work, uami = sys.argv[1:6]

c = load_compute(d1 + "/compute.yml")
assert (c.name, c.type, c.size, c.tier) == ("bs-cpu", "amlcompute", "Standard_D4s_v3", "dedicated"), c
assert (c.min_instances, c.max_instances, c.idle_time_before_scale_down) == (0, 4, 120)
assert c.ssh_public_access_enabled is False and c.tags == {"made-by": "batchscore-submit"}
j = load_job(d1 + "/job.yml")
assert j.type == "command" and j.compute in ("bs-cpu", "azureml:bs-cpu"), j.compute
assert j.display_name == "2024-01-01" and j.environment_variables["WINDOW"] == "1:30", j.environment_variables
assert j.resources.instance_count == 2 and j.distribution.type == "mpi"
assert j.distribution.process_count_per_instance == 4
assert j.inputs["model"].type == "uri_file" and j.inputs["model"].path == work + "/model.json"
assert j.inputs["features"].path == work + "/features.h5" and j.inputs["features"].mode == "ro_mount"
assert j.outputs["scores"].mode == "rw_mount" and j.outputs["scores"].path.endswith("/paths/batchscore/2024-01-01/")
assert j.environment.build.path.endswith("environment") and j.environment.build.dockerfile_path == "Dockerfile"
args = shlex.split(j.command.split(";")[0])
assert args[:3] == ["batchscore", "--model", "${{inputs.model}}"], args
assert "${{inputs.features}}:/grp/x" in args and "--resume" in args and "--write-mode" not in args
rest = j.distribution._to_rest_object().as_dict()
assert rest == {"distributionType": "Mpi", "processCountPerInstance": 4}, rest

c = load_compute(d2 + "/compute.yml")
assert c.tier == "low_priority" and (c.min_instances, c.max_instances) == (1, 8)
assert c.idle_time_before_scale_down == 1800 and c.location == "westeurope"
assert c.identity.type == "user_assigned" and c.identity.user_assigned_identities[0].resource_id == uami
assert c.network_settings.vnet_name == "vn" and c.network_settings.subnet == "sn"
assert c.ssh_public_access_enabled is True and c.ssh_settings.admin_username == "azureuser"
assert c.ssh_settings.ssh_key_value.startswith("ssh-")
# The helper's own az rest body is what the SDK would send (subnet id apart,
# which the SDK builds only with a workspace at hand).
c._set_full_subnet_name("00000000-1111-2222-3333-444444444444", "rg")
sdk = c._to_rest_object().as_dict()
ours = json.load(open(d2 + "/compute-rest.json"))
assert ours == sdk, (ours, sdk)
j = load_job(d2 + "/job.yml")
assert j.resources.instance_count == 8 and j.distribution.process_count_per_instance == 1
assert j.inputs["model"].type == "custom_model" and j.inputs["model"].path in ("azureml:bs-model:3", "bs-model:3")
assert j.inputs["features"].path == "azureml://datastores/workspaceblobstore/paths/f.h5"
assert j.inputs["features"].mode == "download"
assert j.environment_variables["OMP_NUM_THREADS"] == "2" and j.limits.timeout == 7200
assert shlex.split(j.command.split(";")[0])[-4:] == ["--threads", "2", "--kernel", "a b"], j.command

c = load_compute(d3 + "/compute.yml")
assert c.identity.type == "system_assigned" and c.network_settings.subnet.endswith("/subnets/sn")
assert c.enable_node_public_ip is False
print("azure-ai-ml", __version__)
EOF
  if [ $? = 0 ]; then
    ok "generated YAML loads in the Azure ML SDK ($(tail -1 "$WORK/sdk.out"), $SDKPY)"
  else
    fail "the Azure ML SDK rejects the generated YAML:"
    grep -v experimental "$WORK/sdk.out" | sed 's/^/    /' | tail -20
  fi
fi

# ---- the package's pure parts: pytest -------------------------------------------
if "$PY" -c 'import pytest' >/dev/null 2>&1; then
  if (cd "$top_srcdir/tests/submit" && "$PY" -m pytest -q -p no:cacheprovider . >"$WORK/pytest.out" 2>&1); then
    ok "pytest: $(tail -1 "$WORK/pytest.out")"
  else
    fail "pytest:"
    tail -40 "$WORK/pytest.out"
  fi
else
  echo "note: pytest is not installed for $PY (apt-get install python3-pytest): the unit tests were skipped"
fi

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s); the cases are in $WORK"
  exit 1
fi
rm -rf "$WORK"
exit 0
