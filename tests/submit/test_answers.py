"""The fake az's canned answers: made by azure-ai-ml (scripts/make-az-fixtures)
and, where azure.ai.ml is importable here, still the shapes it makes."""

import pytest

import az_answers


def test_answers_have_the_real_cli_shapes(answer):
    assert answer("version.json")["azure-ai-ml"].startswith("1.35.")
    shown = answer("compute-show.json")
    assert shown["failed"]["provisioning_state"].startswith("ProvisioningState.")
    assert isinstance(shown["failed"]["provisioning_errors"], str)
    assert shown["ours"]["tags"] == {"made-by": "batchscore-submit"} and "tags" not in shown["team"]
    assert answer("job-show.json")["status"]["NotResponding"] == "JobStatus.NOT_RESPONDING"
    assert all("current_value" not in u for u in answer("list-usage.json"))
    assert answer("job-stream.json")["failed"]["stderr"].startswith("ERROR: Exception : ")


def test_answers_match_this_azure_ai_ml():
    pytest.importorskip("azure.ai.ml")
    from pathlib import Path
    assert az_answers.differences(str(Path(__file__).resolve().parent / "answers")) == []
