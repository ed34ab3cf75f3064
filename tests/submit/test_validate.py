"""validate: the checks made before any call to Azure."""

from batchscore_submit.validate import (cluster_name_problems, is_registered_model, is_uri, split_input)


def test_cluster_names():
    for good in ("mpi-cluster", "test-a0", "test-0a", "Abc", "a123456789012345"):
        assert cluster_name_problems(good) == [], good
    for bad in ("ab", "1bad", "test-", "test-0", "cpu-cluster-1", "bad_name", "a1234567890123456"):
        assert cluster_name_problems(bad), bad


def test_point9_reserved_names_include_serverless_and_datafactory():
    for name in ("serverless", "DataFactory", "local", "AmlCompute", "containerinstance"):
        assert any("reserved" in p for p in cluster_name_problems(name)), name


def test_point9_registered_models_are_told_from_files_and_uris():
    for ref in ("azureml:bs-model:3", "azureml:bs-model@latest",
                "azureml://registries/reg/models/bs-model/versions/2"):
        assert is_registered_model(ref), ref
    for ref in ("azureml://datastores/workspaceblobstore/paths/m.json", "model.json", "azureml:a:b:c"):
        assert not is_registered_model(ref), ref
    assert is_uri("azureml:bs-model:3") and not is_uri("model.json")


def test_point9_uris_that_would_break_their_quotes_are_refused(opts):
    for uri in ('azureml://datastores/d/paths/a"b.h5', "azureml://datastores/d/paths/$(x).h5",
                "https://acct.blob.core.windows.net/c/a`b`.h5"):
        o = opts("--input", uri, check=False)
        assert any("rename it" in e for e in o.errors), uri
    o = opts("--input", "azureml://datastores/d/paths/my dir/it's (1).h5:/features")
    assert o.input_path.endswith("it's (1).h5") and o.dataset == "/features"


def test_point9_env_values_are_warned_about(opts):
    from batchscore_submit.validate import validate
    o = opts("--env", "DB_PASSWORD=x", "--env", "OMP_NUM_THREADS=2")
    _, warnings = validate(o)
    assert len(warnings) == 1 and "anyone who can read the workspace sees them" in warnings[0]
    assert "DB_PASSWORD looks like one" in warnings[0]


def test_split_input():
    assert split_input("azureml://datastores/d/paths/f.h5:/grp/x") == ("azureml://datastores/d/paths/f.h5", "/grp/x")
    assert split_input("https://host/f.h5") == ("https://host/f.h5", None)
    assert split_input("missing.h5:/features") == ("missing.h5", "/features")


def test_point1_sizing_options_default_to_not_asked(opts):
    o = opts()
    assert (o.vm_size, o.tier, o.min_nodes, o.max_nodes, o.idle_seconds, o.ssh, o.identity) == \
        (None, None, None, None, None, None, None)
    o = opts("--nodes", "5", "--max-nodes", "4", check=False)
    assert any("--nodes 5 is more than --max-nodes 4" in e for e in o.errors)
