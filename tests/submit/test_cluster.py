"""cluster: reading az's answers, reconciling, pre-flight checks."""

import pytest

from batchscore_submit import EXIT_CLUSTER, Failure
from batchscore_submit.cluster import (asked_settings, decide, error_texts, find_size, from_ml, from_rest,
                                       node_summary, normalise_state, PROVISIONING_STATES, quota_problems,
                                       size_problems, subscription_usages)

SCOPE = "--resource-group rg --workspace-name ws"


def test_point1_existing_cluster_keeps_what_was_not_asked(answer, opts):
    team = from_ml(answer("compute-show.json")["team"])
    assert (team["min_instances"], team["max_instances"], team["idle_time_before_scale_down"]) == (2, 20, 1800)
    # No sizing options: nothing to change, whatever the new-cluster defaults are.
    d = decide(team, asked_settings(opts()), 4, False, False, False, "bs-cpu", SCOPE)
    assert d.action == "use" and d.changes == {}
    # Asked for: changed only with --yes on a cluster the helper did not make...
    with pytest.raises(Failure) as e:
        decide(team, asked_settings(opts("--max-nodes", "30")), 4, False, False, False, "bs-cpu", SCOPE)
    assert e.value.code == EXIT_CLUSTER and "needs --yes" in str(e.value)
    d = decide(team, asked_settings(opts("--max-nodes", "30")), 4, True, False, False, "bs-cpu", SCOPE)
    assert d.action == "update" and d.changes == {"max_instances": 30}
    # ...and without it on one it made (its tag).
    ours = from_ml(answer("compute-show.json")["ours"])
    d = decide(ours, asked_settings(opts("--max-nodes", "8", "--idle-seconds", "120")), 4, False, False, False,
               "bs-cpu", SCOPE)
    assert d.changes == {"max_instances": 8}
    with pytest.raises(Failure, match="scales to at most 20: lower --nodes, or pass --max-nodes 25 --yes"):
        decide(team, asked_settings(opts()), 25, False, False, False, "bs-cpu", SCOPE)
    with pytest.raises(Failure, match=r"cannot be changed on an existing cluster \(size\)"):
        decide(ours, asked_settings(opts("--vm-size", "Standard_F8s_v2")), 1, True, False, False, "bs-cpu", SCOPE)
    assert decide(None, {}, 1, False, False, False, "bs-cpu", SCOPE).action == "create"


def test_point2_states_and_errors_as_az_prints_them(answer):
    assert normalise_state("ProvisioningState.FAILED", PROVISIONING_STATES) == "Failed"
    assert normalise_state("succeeded", PROVISIONING_STATES) == "Succeeded"
    assert normalise_state("Weird", PROVISIONING_STATES) == "Weird"
    failed = from_ml(answer("compute-show.json")["failed"])
    assert failed["state"] == "Failed"
    # az ml prints the error code as a string: one line, not one per character.
    assert failed["errors"] == ["BadRequest"] == error_texts("BadRequest")
    # ARM has the messages the diagnoses need.
    rest = from_rest(answer("compute-rest.json")["failed"])
    assert rest["state"] == "Failed" and "vCPU quota of 0" in rest["errors"][0]
    assert from_ml(answer("compute-show.json")["creating"])["state"] == "Creating"


def test_point8_vm_size_is_offered_in_the_region(answer):
    az_ml = answer("list-sizes.json")
    facts = find_size(az_ml, "standard_d4s_v3")
    assert facts is not None and facts.vcpus is None  # recent az ml prints no vCPUs: ARM gives them
    arm = answer("rest-vm-sizes.json")["value"]
    facts = find_size(arm, "Standard_D4s_v3")
    assert (facts.vcpus, facts.family, facts.low_priority) == (4, "standardDSv3Family", True)
    assert size_problems(facts, "Standard_D4s_v3", "dedicated", "westeurope", arm) == []
    missing = size_problems(find_size(arm, "Standard_E4s_v5"), "Standard_E4s_v5", "dedicated", "westeurope", arm)
    assert "not offered" in missing[0] and "westeurope" in missing[0]
    ds3 = find_size(arm, "Standard_DS3_v2")
    assert "low-priority" in size_problems(ds3, "Standard_DS3_v2", "low_priority", "westeurope", arm)[0]


def test_point8_quota_covers_the_nodes_with_numbers(answer):
    facts = find_size(answer("rest-vm-sizes.json")["value"], "Standard_D4s_v3")
    usages = subscription_usages(answer("rest-usages.json")["value"])
    # 8 of 24 DSv3 vCPUs in use: 4 nodes (16) fit, 5 (20) do not.
    assert quota_problems(usages, facts, 4, "dedicated") == ([], [])
    problems, _ = quota_problems(usages, facts, 5, "dedicated")
    assert problems == ["Standard DSv3 Family Cluster Dedicated vCPUs: the job needs 5 node(s) x 4 vCPUs = 20, "
                        "but 8 of the 24 are in use (16 free)"]
    # Nodes the cluster already holds are already counted as in use.
    assert quota_problems(usages, facts, 5, "dedicated", nodes_held=2) == ([], [])
    # Low priority: the regional low-priority quota (20 of 100 in use).
    assert quota_problems(usages, facts, 20, "low_priority")[0] == []
    assert "80 free" in quota_problems(usages, facts, 21, "low_priority")[0][0]
    # az ml's own list-usage (recent SDKs) has no current values: noted, not guessed.
    thin = subscription_usages(answer("list-usage.json"))
    problems, notes = quota_problems(thin, facts, 100, "dedicated")
    assert problems == [] and notes


def test_point11_node_states_summary(answer):
    view = from_rest(answer("compute-rest.json")["preempted"])
    assert node_summary(view) == "1 node(s): 1 running, 1 preempted"
    assert node_summary(from_rest(answer("compute-rest.json")["preparing-2"])) == \
        "2 node(s), resizing to 2: 2 preparing"
    assert node_summary(from_rest(answer("compute-rest.json")["ours"])) == "0 node(s)"
