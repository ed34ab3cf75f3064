"""The job: its name (and the run's earlier jobs), submitting it, following
it (status, what the cluster's nodes do, batchscore's own lines), deciding
from the job's status and batchscore's exit statuses whether to resubmit,
node-hours, Ctrl-C, and downloading the scores."""

import glob
import logging
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

from . import EXIT_CLUSTER, EXIT_FAIL, EXIT_INTERRUPTED, Failure
from .az import Commands, Runner, first_line, indent, is_not_found, parse_json, redact
from .cluster import Cluster, explain, lock_explanation, node_summary, normalise_state
from .render import STATUS_LINE as STATUS_FORMAT, Plan

log = logging.getLogger(__name__)

JOB_STATES = ("NotStarted", "Starting", "Provisioning", "Preparing", "Queued", "Running", "Finalizing",
              "CancelRequested", "Completed", "Failed", "Canceled", "NotResponding", "Paused", "Unknown",
              "Scheduled")
TERMINAL = ("Completed", "Failed", "Canceled")
WAITING = ("NotStarted", "Starting", "Provisioning", "Preparing", "Queued", "Scheduled")
# States that need someone to act (or that az cannot read): followed for at
# most --stuck-seconds, not for ever.
STALLED = ("NotResponding", "Paused", "Unknown")

# batchscore's exit statuses (its documented contract).
EXIT_MEANINGS = {0: "success", 1: "the run failed", 2: "bad command line", 70: "internal error or crash (a bug)",
                 75: "interrupted, or a node went away"}
RETRYABLE = 75
STATUS_LINE = re.compile(re.escape(STATUS_FORMAT).replace(r"\{rank\}", r"(\d+)").replace(r"\{code\}", r"(\d+)"))
INTERRUPTED = re.compile(r"^\s*batchscore: interrupted\b", re.M)
SERVICE_EXIT = re.compile(r"exited with (?:status )?code (\d+)", re.I)
KILLED = re.compile(r"exited on signal (\d+)", re.I)
# How a lost node shows: the service's preemption error, or Open MPI's
# messages about a daemon (a node) it lost.
NODE_LOST = re.compile(r"pre-?empt|has lost communication with a remote daemon|daemon[^\n]{0,60}(?:died|"
                       r"unexpectedly failed|unexpectedly terminated)|node[^\n]{0,60}(?:went away|was lost|unusable|"
                       r"unhealthy|deallocated|was restarted)|NodeFailure|NodeUnusable|NodeUnhealthy", re.I)
PROGRESS = re.compile(r"^\s*(batchscore: .*)$")


def normalise_status(text: object) -> str:
    return normalise_state(text, JOB_STATES) or "Unknown"


class Verdict(NamedTuple):
    kind: str  # "done", "retry", "fail" or "canceled"
    reason: str


def exit_statuses(text: str) -> Dict[int, int]:
    """rank -> batchscore's exit status, from the lines the job's command prints."""
    return {int(rank): int(code) for rank, code in STATUS_LINE.findall(text)}


def meaning(code: int) -> str:
    if code >= 128:
        return "killed by signal %d" % (code - 128)
    return EXIT_MEANINGS.get(code, "an undocumented status")


def classify(status: str, service: str, logs: str, preempted_nodes: int = 0) -> Verdict:
    """Whether a finished job is done, worth resubmitting (batchscore --resume
    continues where it stopped) or failed for good, from the job's status,
    the service's error (SERVICE), the ranks' logs (LOGS) and batchscore's
    documented exit statuses: only 75 (interrupted, or a node went away) is
    retryable; a node that went away or a rank killed by a signal count as 75."""
    if status == "Completed":
        return Verdict("done", "completed")
    if status == "Canceled":
        return Verdict("canceled", "canceled")
    text = service + "\n" + logs
    lost = NODE_LOST.search(text)
    if lost:
        return Verdict("retry", "a node went away (%s)" % lost.group(0).strip())
    codes = exit_statuses(text)
    if RETRYABLE in codes.values() or INTERRUPTED.search(logs):
        return Verdict("retry", "batchscore was interrupted (exit status 75)")
    bad = sorted({c for c in codes.values() if c not in (0, RETRYABLE) and c < 128})
    if bad:
        return Verdict("fail", "batchscore exited with status %s" % ", ".join(
            "%d (%s)" % (c, meaning(c)) for c in bad))
    killed = sorted({c for c in codes.values() if c >= 128}) or [128 + int(s) for s in KILLED.findall(text)]
    if killed:
        return Verdict("retry", "a rank was %s, as when its node goes away" % meaning(killed[0]))
    service_codes = [int(c) for c in SERVICE_EXIT.findall(service)]
    if service_codes:
        code = service_codes[-1]
        if code == RETRYABLE:
            return Verdict("retry", "batchscore was interrupted (exit status 75)")
        return Verdict("fail", "the job's command exited with status %d (%s)" % (code, meaning(code)))
    if preempted_nodes:
        return Verdict("retry", "the cluster reports %d preempted node(s)" % preempted_nodes)
    return Verdict("fail", "the job %s without a batchscore exit status (see its logs)" % status.lower())


def next_attempt(earlier: List[Tuple[str, str]]) -> Tuple[int, Optional[Tuple[str, str]]]:
    """Given the run's earlier jobs (name, status) in order: the next
    attempt's number, and the first job that may still be running (which a
    new job must not join as a second writer)."""
    for name, status in earlier:
        if status not in TERMINAL:
            return len(earlier) + 1, (name, status)
    return len(earlier) + 1, None


def node_hours(attempts: List[Tuple[int, float]]) -> float:
    """(nodes, seconds running) per job -> node-hours."""
    return sum(n * s for n, s in attempts) / 3600.0


def failure_detail(text: str) -> str:
    """The lines of a failed job worth showing: batchscore's own and the error."""
    lines = text.splitlines()
    keep = [line for line in lines if re.match(r"\s*batchscore(-submit)?:", line)]
    for i, line in enumerate(lines):
        if re.search(r"^\s*(ERROR|Error|Exception)\b", line):
            keep += lines[i:i + 20]
            break
    return indent("\n".join(keep or lines[-20:]))


class Streamer:
    """`az ml job stream` in the background: its lines go to stdout (masked),
    the last ones are kept, and so is batchscore's latest line."""

    def __init__(self, proc: "subprocess.Popen[bytes]", echo: bool = True) -> None:
        self.proc, self.echo = proc, echo
        self.tail: List[str] = []
        self.progress: Optional[str] = None
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = redact(raw.decode("utf-8", "replace"))
            if self.echo:
                sys.stdout.write(line)
                sys.stdout.flush()
            m = PROGRESS.match(line.rstrip("\n"))
            if m:
                self.progress = m.group(1)
            self.tail.append(line)
            del self.tail[:-400]

    def finish(self, grace: float) -> str:
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.stop()
        self.thread.join(timeout=5)
        return "".join(self.tail)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Outcome(NamedTuple):
    status: str
    stream: str
    running_seconds: float
    info: dict


class Job:
    """Submits the run's jobs and follows them to the end."""

    def __init__(self, plan: Plan, cmds: Commands, runner: Runner, cluster: Cluster,
                 ask: Callable[[str], bool]) -> None:
        self.plan, self.cmds, self.az, self.cluster, self.o = plan, cmds, runner, cluster, plan.o
        self.ask = ask
        self.current: Optional[str] = None
        self.attempts: List[Tuple[int, float]] = []

    def scope_text(self) -> str:
        return shlex.join(self.cmds.scope())

    # -- naming: the run's earlier jobs
    def status_of(self, name: str) -> Optional[str]:
        r = self.az.run(self.cmds.job_show(name))
        if r.rc != 0:
            if is_not_found(r.err):
                return None
            raise Failure("cannot read job %s: %s" % (name, first_line(r.err)), detail=indent(r.err))
        info = parse_json(r.out, "job %s" % name)
        return normalise_status(info.get("status") if isinstance(info, dict) else None)

    def earlier(self) -> List[Tuple[str, str]]:
        jobs: List[Tuple[str, str]] = []
        while True:
            name = "%s-%d" % (self.plan.run, len(jobs) + 1)
            status = self.status_of(name)
            if status is None:
                return jobs
            jobs.append((name, status))

    def first_attempt(self) -> int:
        """Refuses to start a second writer on the run's output while one of
        its jobs may still be running; else the next free job number."""
        jobs = self.earlier()
        attempt, busy = next_attempt(jobs)
        if busy:
            raise Failure("job %s of run %s is %s: a second job would write into the same output (%s) at the "
                          "same time. Wait for it to end, or cancel it (az ml job cancel --name %s %s), then run "
                          "again" % (busy[0], self.plan.run, busy[1], self.plan.output_path, busy[0],
                                     self.scope_text()))
        if jobs:
            log.info("run %s has %d earlier job(s), the last %s: continuing its output %s", self.plan.run,
                     len(jobs), jobs[-1][1], self.plan.output_path)
        return attempt

    # -- submitting
    def submit(self, attempt: int) -> Tuple[str, int]:
        for _ in range(50):
            name = "%s-%d" % (self.plan.run, attempt)
            r = self.az.run(self.cmds.job_create(str(self.plan.folder.file("job.yml")), name))
            if r.rc == 0:
                info = parse_json(r.out, "job %s" % name)
                studio = ((info.get("services") or {}).get("Studio") or {}).get("endpoint") \
                    if isinstance(info, dict) else None
                log.info("submitted job %s (%d node(s) x %d rank(s))%s", name, self.o.nodes, self.o.ranks_per_node,
                         ": " + studio if studio else "")
                return name, attempt
            if re.search(r"already exists|conflict", r.err, re.I) and re.search(r"job|run|name", r.err, re.I):
                status = self.status_of(name)  # another helper took the name meanwhile
                if status is not None and status not in TERMINAL:
                    raise Failure("job %s was just started by someone else and is %s: not starting a second "
                                  "writer on the same output" % (name, status))
                attempt += 1
                continue
            found = explain(r.err, self.o, self.plan.vm_size, self.cluster.tier())
            if found and found[0] in ("quota", "lock"):
                raise Failure("submitting job %s failed: %s" % (name, found[1]), EXIT_CLUSTER, indent(r.err))
            if re.search(r"compute.{0,60}(not found|does not exist)", r.err, re.I):
                raise Failure("submitting job %s failed: cluster %s not found" % (name, self.o.cluster),
                              EXIT_CLUSTER, indent(r.err))
            raise Failure("submitting job %s failed: %s" % (name, first_line(r.err)), detail=indent(r.err))
        raise Failure("no free job name after %s-%d" % (self.plan.run, attempt))

    # -- following
    def follow(self, name: str) -> Outcome:
        """Polls the job (and streams its logs) until it ends."""
        streamer = None if self.o.no_stream else Streamer(self.az.popen(self.cmds.job_stream(name)))
        last, stalled_since, show_failures = None, None, 0
        watch = ClusterWatch(self.cluster, self.o, name, self.scope_text())
        running_since: Optional[float] = None
        try:
            while True:
                r = self.az.run(self.cmds.job_show(name))
                if r.rc != 0:
                    show_failures += 1
                    if show_failures >= 5:
                        raise Failure("cannot read the status of job %s: %s" % (name, first_line(r.err)),
                                      detail=indent(r.err))
                    time.sleep(self.o.poll_seconds)
                    continue
                show_failures = 0
                info = parse_json(r.out, "job %s" % name)
                info = info if isinstance(info, dict) else {}
                status = normalise_status(info.get("status"))
                now = time.monotonic()
                if status != last:
                    log.info("job %s: %s", name, status)
                    last = status
                if status in ("Running", "Finalizing") and running_since is None:
                    running_since = now
                if status in TERMINAL:
                    text = streamer.finish(max(30.0, 4 * self.o.poll_seconds)) if streamer else ""
                    ran = now - running_since if running_since is not None else 0.0
                    return Outcome(status, text, ran, info)
                stalled_since = self.check_stalled(name, status, stalled_since, now)
                watch.poll(status in WAITING, streamer.progress if streamer else None)
                time.sleep(self.o.poll_seconds)
        finally:
            if streamer:
                streamer.stop()

    def check_stalled(self, name: str, status: str, since: Optional[float], now: float) -> Optional[float]:
        """NotResponding, Paused or Unknown: followed for --stuck-seconds, then
        reported (the job stays in the workspace)."""
        if status not in STALLED:
            return None
        if since is None:
            log.warning("job %s is %s; waiting up to %g s for it to move on", name, status, self.o.stuck_seconds)
            return now
        if now - since >= self.o.stuck_seconds:
            raise Failure("job %s has been %s for %d s: %s It is still in the workspace: look at it in Azure ML "
                          "studio, or cancel it with: az ml job cancel --name %s %s" % (
                              name, status, now - since, STALLED_HELP[status], name, self.scope_text()))
        return since

    # -- the end of a job
    def evidence(self, name: str, outcome: Outcome) -> Tuple[str, str]:
        """(the service's error, the ranks' logs) of a failed job."""
        service = outcome.stream
        if "Execution Summary" not in service:
            # --no-stream, or a stream cut short: a finished job's stream is
            # its summary and the service's error.
            r = self.az.run(self.cmds.job_stream(name))
            service += "\n" + r.out + "\n" + r.err
        folder = str(self.plan.folder.file("logs-" + name))
        r = self.az.run(self.cmds.job_logs(name, folder))
        logs = []
        if r.rc == 0:
            for path in sorted(glob.glob(os.path.join(folder, "**", "user_logs", "*.txt"), recursive=True)):
                try:
                    with open(path, encoding="utf-8", errors="replace") as f:
                        logs.append(redact("".join(f.readlines()[-200:])))
                except OSError:
                    pass
        else:
            log.warning("could not download the logs of job %s: %s", name, first_line(r.err))
        return service, "\n".join(logs)

    def verdict(self, name: str, outcome: Outcome) -> Tuple[Verdict, str]:
        if outcome.status in ("Completed", "Canceled"):
            return classify(outcome.status, "", ""), ""
        service, logs = self.evidence(name, outcome)
        view = self.cluster.view() if self.cluster.tier() == "low_priority" else None
        preempted = ((view or {}).get("nodes") or {}).get("preempted", 0)
        # batchscore's lines in the logs come first: the stream repeats rank 0's.
        return classify(outcome.status, service, logs, preempted), logs + "\n" + service

    def run(self, attempt: int) -> str:
        """Submits (from job number ATTEMPT), follows and resubmits until the
        run completes; the completed job's name."""
        resubmits = 0
        while True:
            name, attempt = self.submit(attempt)
            self.current = name
            outcome = self.follow(name)
            self.attempts.append((self.o.nodes, outcome.running_seconds))
            verdict, text = self.verdict(name, outcome)
            if verdict.kind == "done":
                self.environment_hint(outcome.info)
                self.current = None
                return name
            self.current = None
            if verdict.kind == "canceled":
                raise Failure("job %s was canceled; run again with --run-name %s to continue its output"
                              % (name, self.plan.run))
            if verdict.kind == "retry":
                if resubmits >= self.o.max_resubmits:
                    raise Failure("job %s stopped: %s; the %d resubmission(s) allowed by --max-resubmits are used "
                                  "up: run again with --run-name %s to continue where it stopped"
                                  % (name, verdict.reason, self.o.max_resubmits, self.plan.run),
                                  detail=failure_detail(text))
                resubmits += 1
                attempt += 1
                log.info("job %s stopped: %s. Resubmitting (%d of %d); batchscore --resume continues from what is "
                         "in %s", name, verdict.reason, resubmits, self.o.max_resubmits, self.plan.output_path)
                continue
            logs = shlex.join(["az", "ml", "job", "download", "--name", name, "--all", "--download-path",
                               str(self.plan.folder.file("logs-" + name))] + self.cmds.scope())
            raise Failure("job %s failed: %s; not resubmitted. All its logs: %s" % (name, verdict.reason, logs),
                          EXIT_FAIL, failure_detail(text))

    def environment_hint(self, info: dict) -> None:
        """Where Azure ML registered the image it built, to reuse it next time."""
        env = str(info.get("environment") or "")
        m = re.search(r"/environments/([^/]+)/versions/([^/]+)$", env)
        if self.plan.builds_image() and m:
            log.info("the image is registered as azureml:%s:%s: pass --environment azureml:%s:%s to reuse it "
                     "without a build", m.group(1), m.group(2), m.group(1), m.group(2))

    def node_hours_line(self) -> Optional[str]:
        if not self.attempts:
            return None
        hours = node_hours(self.attempts)
        ran = sum(s for _, s in self.attempts)
        return "node-hours: about %.2f (%d job(s), %.1f min running on %d node(s))" % (
            hours, len(self.attempts), ran / 60.0, self.o.nodes)

    # -- Ctrl-C
    def interrupted(self) -> Failure:
        """Offers to cancel the job being followed (--on-interrupt)."""
        name = self.current
        if not name:
            return Failure("interrupted", EXIT_INTERRUPTED)
        cancel = self.o.on_interrupt == "cancel"
        if self.o.on_interrupt == "ask":
            try:
                cancel = self.ask("cancel job %s? It goes on running otherwise [y/N] " % name)
            except (KeyboardInterrupt, EOFError):
                cancel = False
        if cancel:
            r = self.az.run(self.cmds.job_cancel(name))
            if r.rc == 0:
                return Failure("interrupted: job %s canceled; run again with --run-name %s to continue its output"
                               % (name, self.plan.run), EXIT_INTERRUPTED)
            return Failure("interrupted; canceling job %s failed: %s" % (name, first_line(r.err)), EXIT_INTERRUPTED)
        return Failure("interrupted; job %s goes on running (az ml job cancel --name %s %s to stop it)"
                       % (name, name, self.scope_text()), EXIT_INTERRUPTED)

    # -- the scores
    def download(self, name: str) -> None:
        cmd = self.cmds.job_download(name, self.plan.output_dir)
        log.info("downloading the scores to %s", self.plan.output_dir)
        r = self.az.run(cmd)
        if r.rc != 0:
            raise Failure("downloading the output of job %s failed: %s (retry with: %s)"
                          % (name, first_line(r.err), shlex.join(cmd)), detail=indent(r.err))
        found = sorted(glob.glob(os.path.join(self.plan.output_dir, "**", "scores.h5"), recursive=True))
        if found:
            log.info("scores: %s", found[0])
        else:
            log.info("downloaded to %s (no scores.h5 there: see the job's logs)", self.plan.output_dir)


STALLED_HELP = {
    "NotResponding": "Azure ML lost contact with it (no heartbeat); it may come back.",
    "Paused": "it waits for someone to resume it.",
    "Unknown": "az cannot tell its state.",
}


class ClusterWatch:
    """While a job waits or runs: what the cluster's nodes do (printed when it
    changes), with batchscore's latest line; a resize stuck at 0 -> 0 or a
    quota or lock error on the nodes ends the wait with an explanation."""

    def __init__(self, cluster: Cluster, opts: object, job: str, scope: str) -> None:
        self.cluster, self.o, self.job, self.scope = cluster, opts, job, scope
        self.last: Optional[str] = None
        self.stuck_since: Optional[float] = None
        self.warned: set = set()

    def poll(self, waiting: bool, progress: Optional[str]) -> None:
        view = self.cluster.view()
        line = "cluster %s: %s" % (self.cluster.name, node_summary(view)) if view else None
        if progress:
            line = (line + "; " if line else "") + progress
        if line and line != self.last:
            log.info("%s", line)
            self.last = line
        if view is None or not waiting:
            self.stuck_since = None
            return
        cancel = "the job is still queued; cancel it with: az ml job cancel --name %s %s" % (self.job, self.scope)
        o = self.cluster.o
        for err in view["node_errors"]:
            found = explain(err, o, self.cluster.plan.vm_size, self.cluster.tier())
            if found and found[0] in ("quota", "lock"):
                raise Failure("cluster %s cannot get nodes: %s; %s" % (self.cluster.name, found[1], cancel),
                              EXIT_CLUSTER, indent(err))
            if err not in self.warned:
                self.warned.add(err)
                log.warning("cluster %s reports: %s", self.cluster.name, err)
        if view["allocation"] == "Resizing" and not view["current"] and not view["target"]:
            now = time.monotonic()
            if self.stuck_since is None:
                log.info("cluster %s: resizing 0 -> 0 nodes", self.cluster.name)
                self.stuck_since = now
            elif now - self.stuck_since >= o.stuck_seconds:
                raise Failure("cluster %s: %s; %s" % (self.cluster.name, lock_explanation(o.resource_group), cancel),
                              EXIT_CLUSTER)
        else:
            self.stuck_since = None
