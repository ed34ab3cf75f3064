"""render: the generated files and the work folder."""

import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from batchscore_submit import Failure
from batchscore_submit.render import (CPU_IMAGE, GPU_IMAGE, Plan, WorkDir, needed_to_build, pack_source,
                                      read_mpi_params, yaml_text)

# Values that YAML 1.1 (PyYAML, the SDK's loader) would turn into another type.
ODD = ["2024-01-01", "2024-01-01 10:00:00", "1:30", "1_000", "0x1F", "0o17", "017", "1e3", ".inf", "-.NaN",
       "yes", "No", "on", "OFF", "y", "n", "true", "null", "~", "", " lead", "trail ", "a: b", "#x", "x #y",
       "- item", "[1]", "{a: 1}", "*alias", "&anchor", "!tag", "%x", "@x", "`x`", "'q'", '"d"', "multi\nline",
       "tab\there", "ünï", "12", "-7", "3.0"]


def test_point3_yaml_round_trips_odd_values():
    doc = {"display_name": ODD[0], "environment_variables": {"V%d" % i: v for i, v in enumerate(ODD)},
           "tags": {"batchscore-run": "2024-01-01"}}
    back = yaml.safe_load(yaml_text(doc))
    assert back == doc
    assert all(isinstance(v, str) for v in back["environment_variables"].values())


def test_point3_job_yaml_keeps_run_name_and_env_as_strings(opts, tmp_path):
    o = opts("--run-name", "2024-01-01", "--env", "WINDOW=1:30", "--env", "FLAG=on", "--experiment", "0x10")
    job = yaml.safe_load(yaml_text(Plan(o, None).job_yaml()))
    assert job["display_name"] == "2024-01-01" and job["experiment_name"] == "0x10"
    assert job["environment_variables"]["WINDOW"] == "1:30" and job["environment_variables"]["FLAG"] == "on"


def test_point4_work_dir_is_private_and_files_are_exclusive(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    a, b = WorkDir.create(None), WorkDir.create(None)
    assert a.path != b.path and a.path.parent == tmp_path and a.path.name.startswith("batchscore-submit-")
    assert stat.S_IMODE(os.stat(a.path).st_mode) == 0o700
    written = a.write_text("job.yml", "x: 1\n")
    assert stat.S_IMODE(os.stat(written).st_mode) == 0o600
    with pytest.raises(Failure):
        a.write_text("job.yml", "again")
    # A symlink planted where a file will be written is not followed.
    os.symlink(tmp_path / "victim", a.path / "compute.yml")
    with pytest.raises(Failure):
        a.write_text("compute.yml", "x")
    assert not (tmp_path / "victim").exists()


def test_point4_work_dir_option_must_be_new_or_empty(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("")
    os.symlink(tmp_path / "empty-target", tmp_path / "link")
    (tmp_path / "empty-target").mkdir()
    for bad in ("full", "link"):
        with pytest.raises(Failure):
            WorkDir.create(str(tmp_path / bad))
    assert WorkDir.create(str(tmp_path / "new" / "dir")).path.is_dir()
    assert WorkDir.create(str(tmp_path / "empty-target")).path.is_dir()


def test_point7_dry_run_folder_can_be_submitted_by_hand(opts, tmp_path):
    work = WorkDir.create(str(tmp_path / "w"))
    plan = Plan(opts(), work)
    plan.write_compute()
    plan.write_job(with_source=True)
    names = sorted(str(p.relative_to(work.path)) for p in work.path.rglob("*") if p.is_file())
    assert names == ["compute.yml", "environment/Dockerfile", "environment/batchscore-src.tar.gz", "job.yml"]
    job = yaml.safe_load((work.path / "job.yml").read_text())
    assert job["environment"] == {"build": {"path": "environment", "dockerfile_path": "Dockerfile"}}


def test_point9_rest_body_is_what_the_sdk_sends(opts, answer, tmp_path):
    """The az rest fallback's body equals azure-ai-ml's _to_rest_object() of
    the same cluster (tests/submit/answers/sdk-rest-bodies.json)."""
    sdk = answer("sdk-rest-bodies.json")
    o = opts("--location", "westeurope", "--vm-size", "Standard_D4s_v3", "--tier", "dedicated", "--max-nodes", "4")
    assert Plan(o, None).compute_rest_body("westeurope", None) == sdk["basic"]
    key = tmp_path / "key.pub"
    key.write_text("ssh-ed25519 AAAAC3Nza test\n")
    uami = ("/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg/providers/"
            "Microsoft.ManagedIdentity/userAssignedIdentities/bs-id")
    o = opts("--location", "westeurope", "--vm-size", "Standard_F8s_v2", "--tier", "low_priority", "--min-nodes", "1",
             "--max-nodes", "8", "--idle-seconds", "1800", "--ssh", "--ssh-key", str(key), "--identity-id", uami,
             "--vnet", "vn", "--subnet", "sn", "--no-node-public-ip")
    assert Plan(o, None).compute_rest_body("westeurope", "00000000-1111-2222-3333-444444444444") == sdk["full"]


def test_point9_registered_model_is_a_custom_model_input(opts):
    o = opts("--model", "azureml:bs-model:3", "--model-file", "model.json")
    job = Plan(o, None).job_yaml()
    assert job["inputs"]["model"] == {"type": "custom_model", "path": "azureml:bs-model:3", "mode": "download"}
    assert '"${{inputs.model}}/model.json"' in job["command"]


def test_point9_job_command_quotes_every_value(opts, tmp_path):
    """Azure ML pastes mount paths into the command: run it through sh."""
    o = opts("--input", "azureml://datastores/d/paths/it's dir/f (1).h5:/g x", "--", "--kernel", "a 'b' $(c)")
    cmd = Plan(o, None).job_command()
    fake = tmp_path / "batchscore"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    fake.chmod(0o755)
    cmd = cmd.replace("${{inputs.model}}", "/mnt/in/it's model.json")
    cmd = cmd.replace("${{inputs.features}}", "/mnt/in/it's dir/f (1).h5").replace("${{outputs.scores}}", "/mnt/o o")
    out = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True,
                         env={"PATH": "%s:/usr/bin:/bin" % tmp_path, "OMPI_COMM_WORLD_RANK": "3"})
    lines = out.stdout.splitlines()
    assert lines[:9] == ["--model", "/mnt/in/it's model.json", "--input", "/mnt/in/it's dir/f (1).h5:/g x",
                         "--output", "/mnt/o o/scores.h5", "--resume", "--kernel", "a 'b' $(c)"]
    assert lines[9] == "batchscore-submit: rank 3: batchscore exit status 0" and out.returncode == 0


def test_point10_job_environment(opts):
    env = Plan(opts(), None).environment_variables()
    params = read_mpi_params(Path(__file__).resolve().parents[2] / "scripts" / "mpi-params")
    assert params and all(env["OMPI_MCA_" + k] == v for k, v in params)
    assert env["OMPI_MCA_hwloc_base_binding_policy"] == "none" and env["HDF5_USE_FILE_LOCKING"] == "FALSE"
    env = Plan(opts("--bind-ranks", "core", "--env", "HDF5_USE_FILE_LOCKING=TRUE"), None).environment_variables()
    assert env["OMPI_MCA_hwloc_base_binding_policy"] == "core" and env["HDF5_USE_FILE_LOCKING"] == "TRUE"


def test_point10_one_open_mpi_and_a_cuda_image_for_gpu_sizes(opts):
    cpu = Plan(opts(), None)
    text = cpu.dockerfile_text()
    assert cpu.base_image() == CPU_IMAGE and "--without-cuda" in text
    install = [line for line in text.splitlines() if "apt-get install" in line or line.startswith("      lib")]
    assert not any("openmpi" in line or "mpich" in line for line in install), install
    assert "CC=mpicc ./configure" in text and "--enable-parallel" in text and "sha256sum -c" in text
    # Only the program is made: make all would want what the context leaves
    # out (the installed scripts, man pages, README). configure needs xxHash.
    assert "BUILD_TARGETS=batchscore " in text and "libxxhash-dev" in text
    gpu = Plan(opts("--vm-size", "Standard_NC24ads_A100_v4"), None)
    assert gpu.base_image() == GPU_IMAGE and "--with-cuda=/usr/local/cuda" in gpu.dockerfile_text()
    reg = Plan(opts("--environment", "azureml:bs-env:7"), None)
    assert reg.job_yaml()["environment"] == "azureml:bs-env:7" and not reg.builds_image()
    img = Plan(opts("--image", "reg.azurecr.io/bs:1"), None)
    assert img.job_yaml()["environment"] == {"image": "reg.azurecr.io/bs:1"}


def test_point10_image_rebuilt_only_when_build_files_change(tmp_path):
    for f in ("configure.ac", "Makefile.am", "src/main.c", "kernels/ref/tree.c", "m4/cuda.m4", "scripts/build",
              "src/third_party/onnx/onnx-ml.proto", "tests/test_driver.c", "tests/testutil.h"):
        assert needed_to_build(f), f
    for f in ("README.md", "BENCHMARKS.md", "src/third_party/onnx/README.md", "data/example/model.json",
              "scripts/run-tests", "tests/submit.sh",
              "tests/submit/answers/job-show.json", ".ci/run"):
        assert not needed_to_build(f), f
    src = tmp_path / "src"
    (src / "src").mkdir(parents=True)
    (src / "configure.ac").write_text("AC_INIT\n")
    (src / "src" / "main.c").write_text("int main(void) { return 0; }\n")
    first = pack_source(str(src))
    (src / "README.md").write_text("docs\n")
    assert pack_source(str(src)) == first  # same build files, same bytes
    (src / "src" / "main.c").write_text("int main(void) { return 1; }\n")
    assert pack_source(str(src)) != first
    names = tarfile.open(fileobj=io.BytesIO(first)).getnames()
    assert names == ["batchscore/configure.ac", "batchscore/src/main.c"]
