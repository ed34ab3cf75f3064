"""batchscore-submit: run batchscore on an Azure ML compute cluster with MPI.

scripts/batchscore-submit is the entry point; the modules, by concern:

  cli       the command line and the run's steps, in order
  config    the --config file and the workspace defaults (az configure, config.json)
  validate  every check made before any call to Azure
  render    the generated files (compute.yml, job.yml, Dockerfile, source
            tarball, az rest body) and the --dry-run plan
  az        az command lines, running them, masking secrets in what they print
  cluster   the cluster: its state, reconciling it with the request, pre-flight
            checks (VM size, quota), what its nodes are doing
  follow    the job: naming, submitting, following, deciding on resubmission,
            node-hours, Ctrl-C, download

Needs Python 3.8 or newer and PyYAML (Debian: python3-yaml); nothing else.
"""

from typing import Optional

PROG = "batchscore-submit"

# The helper's own exit statuses.
EXIT_OK = 0
EXIT_FAIL = 1  # the job or an az call failed
EXIT_USAGE = 2  # bad command line: nothing was run
EXIT_CLUSTER = 3  # the cluster could not be provisioned or used as asked
EXIT_INTERRUPTED = 130  # Ctrl-C


class Failure(Exception):
    """An error reported on one line (plus optional detail lines) that ends
    the run with `code`."""

    def __init__(self, message: str, code: int = EXIT_FAIL, detail: Optional[str] = None) -> None:
        super().__init__(message)
        self.code = code
        self.detail = detail
