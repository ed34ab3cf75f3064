"""follow: deciding on resubmission, earlier runs, node-hours, Ctrl-C."""

import re
from types import SimpleNamespace

from batchscore_submit.az import Result
from batchscore_submit.follow import (Job, classify, exit_statuses, next_attempt, node_hours, normalise_status)


def streams(answer):
    """case -> (what az ml job stream printed, rank 0's log)."""
    out = {}
    for case, s in answer("job-stream.json").items():
        m = re.search(r"={5,}\n\n(.*?)\n\nExecution Summary", s["stdout"], re.S)
        out[case] = (s["stdout"] + s["stderr"], m.group(1) if m else "")
    return out


def test_point5_resubmission_from_status_and_exit_statuses(answer):
    expected = {"completed": "done", "preempted": "retry", "node-lost": "retry", "interrupted": "retry",
                "failed": "fail", "failed-secret": "fail", "crashed": "fail"}
    for case, (stream, logs) in streams(answer).items():
        status = "Completed" if case == "completed" else "Failed"
        # Streaming: the stream has the logs and the service's error.
        assert classify(status, stream, logs).kind == expected[case], case
        # --no-stream: the job's logs, and the error (no log lines) from the service.
        error_only = answer("job-stream.json")[case]["stderr"]
        assert classify(status, error_only, logs).kind == expected[case], case
    assert "status 70" in classify("Failed", *streams(answer)["crashed"]).reason
    assert "a node went away" in classify("Failed", *streams(answer)["node-lost"]).reason


def test_point5_exit_statuses_and_lost_nodes():
    assert exit_statuses("batchscore-submit: rank 0: batchscore exit status 75\n"
                         "batchscore-submit: rank 3: batchscore exit status 1\n") == {0: 75, 3: 1}
    assert classify("Failed", "", "batchscore-submit: rank 2: batchscore exit status 137").kind == "retry"
    assert classify("Failed", "", "mpirun noticed that process rank 1 with PID 7 on node n1 exited on signal 9 "
                                  "(Killed).").kind == "retry"
    assert classify("Failed", "User process '/bin/bash' exited with status code 2.", "").kind == "fail"
    assert classify("Failed", "", "", preempted_nodes=1).kind == "retry"
    assert classify("Failed", "", "").kind == "fail"
    assert classify("Canceled", "", "").kind == "canceled"


def test_point2_job_states_as_az_prints_them(answer):
    printed = answer("job-show.json")["status"]
    for state, shown in printed.items():
        assert normalise_status(shown) == state
    assert normalise_status("JobStatus.NOT_RESPONDING") == "NotResponding"
    assert normalise_status(None) == "Unknown"


def test_point6_a_run_still_going_is_not_joined():
    assert next_attempt([]) == (1, None)
    assert next_attempt([("t1-1", "Failed"), ("t1-2", "Completed")]) == (3, None)
    assert next_attempt([("t1-1", "Failed"), ("t1-2", "Running")]) == (3, ("t1-2", "Running"))
    assert next_attempt([("t1-1", "NotResponding")])[1] == ("t1-1", "NotResponding")


class FakeRunner:
    def __init__(self):
        self.calls = []

    def run(self, cmd):
        self.calls.append(cmd)
        return Result(0, "", "")


def job_for(on_interrupt, answer_yes):
    from batchscore_submit.az import Commands
    plan = SimpleNamespace(o=SimpleNamespace(on_interrupt=on_interrupt, nodes=2), run="t1")
    runner = FakeRunner()
    job = Job(plan, Commands("rg", "ws", None), runner, None, lambda question: answer_yes)
    job.current = "t1-1"
    return job, runner


def test_point11_ctrl_c_offers_to_cancel():
    job, runner = job_for("ask", True)
    f = job.interrupted()
    assert f.code == 130 and "canceled" in str(f) and runner.calls[0][:5] == ["az", "ml", "job", "cancel", "--name"]
    job, runner = job_for("ask", False)
    f = job.interrupted()
    assert runner.calls == [] and "goes on running (az ml job cancel --name t1-1" in str(f)
    job, runner = job_for("leave", True)
    assert job.interrupted().code == 130 and runner.calls == []


def test_point11_node_hours():
    assert node_hours([(2, 1800.0), (2, 900.0)]) == 1.5
    job, _ = job_for("leave", False)
    assert job.node_hours_line() is None
    job.attempts = [(2, 1800.0), (2, 900.0)]
    assert job.node_hours_line() == "node-hours: about 1.50 (2 job(s), 45.0 min running on 2 node(s))"
