#!/bin/sh
# scripts/batchscore-submit without a cloud: every validation rule (accepted
# and rejected), --dry-run (prints every file and az command, runs nothing),
# and the service's stories played by a fake az placed first on PATH
# (tests/submit/fake-az): cluster absent -> created, existing with other
# settings, quota, resize stuck at 0 -> 0, invalid or taken name, preemption
# then resubmission, a failed job, the az rest fallback. Values with spaces,
# quotes and $(...) must reach az, and the job's shell, as one literal word.
# Where some python3 can import azure.ai.ml, the generated YAML is also
# loaded by the Azure ML SDK (offline); otherwise that part is skipped.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
command -v python3 >/dev/null 2>&1 || { echo "SKIP: no python3"; exit 77; }
# The interpreter itself, not a wrapper script that needs PATH.
PY=$(python3 -c 'import sys; print(sys.executable)')
HELPER=$top_srcdir/scripts/batchscore-submit
FAKE_AZ_SCRIPT=$top_srcdir/tests/submit/fake-az
WORK=$top_builddir/tests/scratch/submit
rm -rf "$WORK"
mkdir -p "$WORK/bin" "$WORK/nobin"
# The fake az runs through python3, so it works even where the source tree
# lost its executable bits.
printf '#!/bin/sh\nexec "$FAKE_AZ_PY" "$FAKE_AZ_SCRIPT" "$@"\n' >"$WORK/bin/az"
chmod +x "$WORK/bin/az"
FAKE_AZ_PY=$PY
export FAKE_AZ_PY FAKE_AZ_SCRIPT
PATH=$WORK/bin:$PATH
export PATH PYTHONDONTWRITEBYTECODE=1
export BATCHSCORE_SUBMIT_POLL_SECONDS=0.01 BATCHSCORE_SUBMIT_STUCK_SECONDS=0.1
export BATCHSCORE_SUBMIT_PROVISION_TIMEOUT=30
unset FAKE_AZ_CLUSTER FAKE_AZ_SCENARIO

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

# bs CASE ARGS...: runs the helper in a fresh case directory (its own fake
# az state and log) with the base options, then ARGS (which win); sets rc
# and D, with D/out, D/err and D/az.log (one JSON argv a line).
n=0
bs() {
  n=$((n + 1))
  D=$WORK/case$n
  mkdir -p "$D/state"
  export FAKE_AZ_STATE="$D/state" FAKE_AZ_LOG="$D/az.log"
  : >"$D/az.log"
  printf '%s\n' "$*" >"$D/cmd"
  # A hung helper (a log stream never stopped) fails the case, not CI.
  timeout 300 "$PY" "$HELPER" -g rg -w ws --cluster bs-cpu --model "$WORK/model.json" \
    --input "$WORK/features.h5" --run-name t1 --work-dir "$D/files" --output-dir "$D/dl" \
    "$@" >"$D/out" 2>"$D/err"
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
# recorded az command lines contain PATTERN), called:PATTERN (at least one).
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
reject "no resource group" "--resource-group is required" --resource-group ''
accept "input with dataset" --input "$WORK/features.h5:/grp/x"
accept "input URI with dataset" --input "azureml://datastores/workspaceblobstore/paths/f.h5:/features"
reject "batchscore --output after --" "--output after '--' is set by batchscore-submit" -- --output x.h5
reject "batchscore --write-mode after --" "--write-mode after '--'" -- --write-mode=parallel
reject "bad --env" "--env 'A B=1'" --env "A B=1"
reject "bad run name" "--run-name 'a/b'" --run-name a/b

# several problems are all reported at once
bs --cluster test-0 --tier spot --nodes 9
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

bs --dry-run --nodes 2 --ranks-per-node 4 --tier low_priority --max-resubmits 5 -- --threads 2
expect "dry-run prints the plan, runs nothing" 0 \
  "out:type: amlcompute" "out:tier: low_priority" "out:max_instances: 4" \
  "out:ssh_public_access_enabled: false" "out:type: command" "out:instance_count: 2" \
  "out:process_count_per_instance: 4" "out:type: mpi" "out:--resume --write-mode root --threads 2" \
  "out:FROM mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04" "out:libhdf5-openmpi-dev" \
  "out:scripts/build" "out:az extension show --name ml" "out:az ml compute show --name bs-cpu" \
  "out:az ml compute create --file $D/files/compute.yml" "out:az ml compute update --name bs-cpu" \
  "out:az ml job create --file $D/files/job.yml --name t1-1" "out:az ml job stream --name t1-1" \
  "out:az ml job show --name t1-1" "out:az ml job create --file $D/files/job.yml --name t1-2" \
  "out:at most 5 times" "out:az ml job download --name t1-1 --output-name scores --download-path $D/dl" \
  "out:paths/batchscore/t1/"
[ -s "$D/az.log" ] && fail "dry-run: az was called"
[ -f "$D/files/job.yml" ] && [ -f "$D/files/compute.yml" ] && [ -f "$D/files/environment/Dockerfile" ] &&
  [ ! -f "$D/files/environment/batchscore-src.tar.gz" ] ||
  fail "dry-run --work-dir: expected the text files (and no source tarball) in $D/files"

bs --dry-run --use-rest --subscription 00000000-1111-2222-3333-444444444444 --provision-only
expect "dry-run with az rest" 0 "out:az rest --method get --url" \
  "out:az rest --method put --url 'https://management.azure.com/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws/computes/bs-cpu?api-version=2025-09-01' --body @$D/files/compute-rest.json" \
  "out:\"vmPriority\": \"Dedicated\"" "out:\"nodeIdleTimeBeforeScaleDown\": \"PT2M\"" "out:--provision-only: stop here"

# ---- the service's stories (fake az) -------------------------------------------
FAKE_AZ_SCENARIO=create
export FAKE_AZ_SCENARIO
bs
expect "absent cluster: created, waited for, job run, scores downloaded" 0 \
  "err:cluster bs-cpu does not exist: creating it" "err:cluster bs-cpu: Creating" \
  "err:cluster bs-cpu: Succeeded" "err:submitted job t1-1" "err:job t1-1: Completed" \
  "err:scores: $D/dl/named-outputs/scores/scores.h5" "out:Execution Summary" \
  "calls:ml compute create --file $D/files/compute.yml --resource-group rg --workspace-name ws --no-wait=1" \
  "calls:ml compute show=4" "calls:ml job create=1" "calls:ml job stream --name t1-1=1" \
  "calls:ml job download --name t1-1 --output-name scores --download-path $D/dl=1"
[ -s "$D/files/environment/batchscore-src.tar.gz" ] &&
  tar tzf "$D/files/environment/batchscore-src.tar.gz" | grep -qx 'batchscore/configure.ac' ||
  fail "the source tarball for the image is missing or lacks configure.ac"

FAKE_AZ_SCENARIO=exists
bs
expect "existing cluster with the requested settings" 0 "err:has the requested settings" \
  "calls:ml compute create=0" "calls:ml compute update=0" "calls:ml job create=1"

export FAKE_AZ_CLUSTER='{"max_instances": 2, "idle_time_before_scale_down": 1800}'
bs
expect "existing cluster, updatable differences: updated" 0 \
  "err:max_instances: cluster has 2, requested 4" "err:updating cluster bs-cpu" \
  "calls:ml compute update --name bs-cpu --resource-group rg --workspace-name ws --max-instances 4 --idle-time-before-scale-down 120 --output json=1" \
  "calls:--min-instances=0" "calls:ml job create=1"

export FAKE_AZ_CLUSTER='{"size": "STANDARD_DS3_V2", "max_instances": 2}'
bs --tier low_priority
expect "existing cluster, fixed differences: refused, nothing changed" 3 \
  "err:size: cluster has STANDARD_DS3_V2, requested Standard_D4s_v3 (cannot be changed)" \
  "err:tier: cluster has dedicated, requested low_priority (cannot be changed)" \
  "err:max_instances: cluster has 2, requested 4" "err:cannot be changed on an existing cluster (size, tier)" \
  "err:az ml compute delete --name bs-cpu" "err:--keep-existing" \
  "calls:ml compute update=0" "calls:ml job create=0"
bs --tier low_priority --keep-existing --nodes 2
expect "existing cluster, --keep-existing: used as it is" 0 "err:using cluster bs-cpu as it is" \
  "calls:ml compute update=0" "calls:ml job create=1"
bs --keep-existing --nodes 3
expect "--keep-existing with more nodes than the cluster has" 3 "err:scales to at most 2" "calls:ml job create=0"
unset FAKE_AZ_CLUSTER

FAKE_AZ_SCENARIO=quota
bs --min-nodes 1
expect "quota exceeded while provisioning" 3 "err:provisioning of cluster bs-cpu ended Failed" \
  "err:vCPU quota" "err:az ml compute list-usage --resource-group rg --workspace-name ws --output table" \
  "err:vCPU quota of 0 and cannot accomodate" "calls:ml job create=0"

FAKE_AZ_SCENARIO=quota-job
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

FAKE_AZ_SCENARIO=badname
bs
expect "invalid name (service side)" 3 "err:creating cluster bs-cpu failed" "err:refused the name 'bs-cpu'" \
  "err:Compute name is invalid" "calls:ml job create=0"
FAKE_AZ_SCENARIO=taken
bs
expect "name taken in the region" 3 "err:the name 'bs-cpu' is taken" "err:unique among all computes in the Azure region" \
  "calls:ml job create=0"

FAKE_AZ_SCENARIO=preempt
export FAKE_AZ_CLUSTER='{"tier": "low_priority"}'
bs --tier low_priority
expect "low-priority job preempted, resubmitted, completed" 0 "err:job t1-1 was preempted" \
  "err:resubmitting (1 of 3)" "err:job t1-2: Completed" "out:PreemptionError" \
  "calls:ml job create --file $D/files/job.yml --name t1-1=1" \
  "calls:ml job create --file $D/files/job.yml --name t1-2=1" "calls:ml job download --name t1-2=1"
FAKE_AZ_SCENARIO=preempt-always
bs --tier low_priority --max-resubmits 2
expect "preempted every time: resubmissions bounded" 1 "err:resubmitting (2 of 2)" \
  "err:--max-resubmits are used up" "err:--run-name t1" "calls:ml job create=3" "calls:ml job download=0"
unset FAKE_AZ_CLUSTER
FAKE_AZ_SCENARIO=preempt
bs
expect "preemption on a dedicated cluster: not resubmitted" 1 "err:the cluster is dedicated" "calls:ml job create=1"

FAKE_AZ_SCENARIO=failed
bs
expect "job failed (not a preemption): reported, not resubmitted, secrets masked" 1 "err:job t1-1 failed" \
  "err:batchscore: input features.h5: dataset '/features' has 29 columns" "err:<redacted>" \
  "noerr:S3cr3tSAS" "noerr:eyJhbGciOiJSUzI1NiJ9" "calls:ml job create=1" "calls:ml job download=0"

FAKE_AZ_SCENARIO=rerun
bs --no-stream
expect "a job name already used by an earlier run: the next one is taken" 0 "err:submitted job t1-2" \
  "calls:ml job create=2" "calls:ml job stream=0" "calls:ml job download --name t1-2=1"

FAKE_AZ_SCENARIO=rest
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

FAKE_AZ_SCENARIO=create
n=$((n + 1))
D=$WORK/case$n
mkdir -p "$D"
: >"$D/az.log"
PATH=$WORK/nobin "$PY" "$HELPER" -g rg -w ws --cluster bs-cpu --provision-only >"$D/out" 2>"$D/err"
rc=$?
expect "no az on PATH" 1 "err:the Azure CLI (az) is not on PATH"

# ---- values with spaces, quotes and $(...) stay one literal word ---------------
WEIRD="my sub 'x' \"y\" \$(touch $WORK/pwned) \`touch $WORK/pwned2\` ;&|"
FAKE_AZ_SCENARIO=create
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
# Azure ML does, run by a real shell: batchscore must get each value whole.
mkdir -p "$WORK/fakebs" "$WORK/mnt/in dir" "$WORK/mnt/out dir"
cat >"$WORK/fakebs/batchscore" <<EOF
#!/bin/sh
exec "$PY" -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "\$@"
EOF
chmod +x "$WORK/fakebs/batchscore"
"$PY" - "$WD/job.yml" "$WORK" <<'EOF' >"$WORK/jobcmd" || fail "job command: not found in job.yml"
import json, sys
work = sys.argv[2]
for line in open(sys.argv[1]):
    if line.startswith("command: "):
        cmd = json.loads(line[len("command: "):])
        cmd = cmd.replace("${{inputs.model}}", work + "/mnt/in dir/model.json")
        cmd = cmd.replace("${{inputs.features}}", work + "/mnt/in dir/features.h5")
        cmd = cmd.replace("${{outputs.scores}}", work + "/mnt/out dir")
        print(cmd)
EOF
PATH=$WORK/fakebs:$PATH sh -c "$(cat "$WORK/jobcmd")" >"$WORK/jobargv" 2>&1
"$PY" - "$WORK/jobargv" "$WORK" <<'EOF' && ok "job command: every value is one word for the shell" || { fail "job command: $(cat "$WORK/jobargv")"; cat "$WORK/jobcmd"; }
import json, sys
got = json.load(open(sys.argv[1]))
w = sys.argv[2]
want = ["--model", w + "/mnt/in dir/model.json", "--input", w + "/mnt/in dir/features.h5:/features",
        "--output", w + "/mnt/out dir/scores.h5", "--resume", "--write-mode", "root",
        "--kernel", "ref $(touch %s/pwned3) 'a' \"b\"" % w]
assert got == want, (got, want)
EOF
[ -e "$WORK/pwned3" ] && fail "the job command executed a \$(...) from a batchscore argument"

# ---- the generated YAML, loaded by the Azure ML SDK (offline) -----------------
SDKPY=
for cand in ${AZURE_ML_PYTHON:-} python3 /usr/bin/python3 /usr/local/bin/python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import azure.ai.ml' >/dev/null 2>&1; then
    SDKPY=$cand
    break
  fi
done
if [ -z "$SDKPY" ]; then
  echo "note: azure-ai-ml is not importable by any python3 here: SDK validation of the YAML skipped"
else
  bs --dry-run --work-dir "$WORK/sdk1/files" --nodes 2 --ranks-per-node 4 --input "$WORK/features.h5:/grp/x"
  D1=$WORK/sdk1/files
  bs --dry-run --work-dir "$WORK/sdk2/files" --tier low_priority --min-nodes 1 --max-nodes 8 --nodes 8 \
    --idle-seconds 1800 --identity-id "$UAMI" --vnet vn --subnet sn --ssh --ssh-key "$WORK/key.pub" \
    --env OMP_NUM_THREADS=2 --timeout-seconds 7200 --input-mode download --location westeurope \
    --use-rest --subscription 00000000-1111-2222-3333-444444444444 \
    --input "azureml://datastores/workspaceblobstore/paths/f.h5:/features" -- --threads 2 --kernel "a b"
  D2=$WORK/sdk2/files
  bs --dry-run --work-dir "$WORK/sdk3/files" --identity system --subnet "$SUBNET_ID" --provision-only
  D3=$WORK/sdk3/files
  "$SDKPY" - "$D1" "$D2" "$D3" "$WORK" "$UAMI" <<'EOF' >"$WORK/sdk.out" 2>&1
import json, shlex, sys
from azure.ai.ml import __version__, load_compute, load_job
d1, d2, d3, work, uami = sys.argv[1:6]

c = load_compute(d1 + "/compute.yml")
assert (c.name, c.type, c.size, c.tier) == ("bs-cpu", "amlcompute", "Standard_D4s_v3", "dedicated"), c
assert (c.min_instances, c.max_instances, c.idle_time_before_scale_down) == (0, 4, 120)
assert c.ssh_public_access_enabled is False
j = load_job(d1 + "/job.yml")
assert j.type == "command" and j.compute in ("bs-cpu", "azureml:bs-cpu"), j.compute
assert j.resources.instance_count == 2 and j.distribution.type == "mpi"
assert j.distribution.process_count_per_instance == 4
assert j.inputs["model"].type == "uri_file" and j.inputs["model"].path == work + "/model.json"
assert j.inputs["features"].path == work + "/features.h5" and j.inputs["features"].mode == "ro_mount"
assert j.outputs["scores"].mode == "rw_mount" and j.outputs["scores"].path.endswith("/paths/batchscore/t1/")
assert j.environment.build.path.endswith("environment") and j.environment.build.dockerfile_path == "Dockerfile"
args = shlex.split(j.command)
assert args[:3] == ["batchscore", "--model", "${{inputs.model}}"], args
assert "${{inputs.features}}:/grp/x" in args and "--resume" in args
assert args[args.index("--write-mode") + 1] == "root"
rest = j.distribution._to_rest_object().as_dict()
assert rest == {"distributionType": "Mpi", "processCountPerInstance": 4}, rest

c = load_compute(d2 + "/compute.yml")
assert c.tier == "low_priority" and (c.min_instances, c.max_instances) == (1, 8)
assert c.idle_time_before_scale_down == 1800 and c.location == "westeurope"
assert c.identity.type == "user_assigned" and c.identity.user_assigned_identities[0].resource_id == uami
assert c.network_settings.vnet_name == "vn" and c.network_settings.subnet == "sn"
assert c.ssh_public_access_enabled is True and c.ssh_settings.admin_username == "azureuser"
assert c.ssh_settings.ssh_key_value.startswith("ssh-")
# The helper's own az rest body says what the SDK would send.
sdk = c._to_rest_object().as_dict()
ours = json.load(open(d2 + "/compute-rest.json"))
for key in ("location", "identity"):
    assert ours[key] == sdk[key], (key, ours[key], sdk[key])
assert ours["properties"]["computeType"] == sdk["properties"]["computeType"] == "AmlCompute"
for key, value in ours["properties"]["properties"].items():
    if key != "subnet":  # the SDK builds the subnet id only with a workspace at hand
        assert sdk["properties"]["properties"][key] == value, (key, value, sdk["properties"]["properties"][key])
assert ours["properties"]["properties"]["subnet"]["id"].endswith(
    "/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vn/subnets/sn")
j = load_job(d2 + "/job.yml")
assert j.resources.instance_count == 8 and j.distribution.process_count_per_instance == 1
assert j.inputs["features"].path == "azureml://datastores/workspaceblobstore/paths/f.h5"
assert j.inputs["features"].mode == "download"
assert j.environment_variables == {"OMP_NUM_THREADS": "2"} and j.limits.timeout == 7200
assert shlex.split(j.command)[-4:] == ["--threads", "2", "--kernel", "a b"], j.command

c = load_compute(d3 + "/compute.yml")
assert c.identity.type == "system_assigned" and c.network_settings.subnet.endswith("/subnets/sn")
print("azure-ai-ml", __version__)
EOF
  if [ $? = 0 ]; then
    ok "generated YAML loads in the Azure ML SDK ($(tail -1 "$WORK/sdk.out"), $SDKPY)"
  else
    fail "the Azure ML SDK rejects the generated YAML:"
    sed 's/^/    /' "$WORK/sdk.out" | tail -20
  fi
fi

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
exit 0
