"""procfound: run subprocesses from sync, asyncio and trio code; never hang, never orphan.

The public names, compatible with ``provide.foundation.process``.
"""

from procfound.call.observe import Line
from procfound.call.options import IgnoredArgumentWarning
from procfound.call.stop import StopPolicy, stop_policy
from procfound.engine.expect import ExpectMatch
from procfound.errors import (
    DecodeError,
    PlatformError,
    ProcessError,
    ProcessTimeoutError,
    ShellFeatureError,
    StateError,
    ValidationError,
)
from procfound.exit import exit_error, exit_interrupted, exit_success
from procfound.linux.prctl import (
    get_name,
    has_prctl,
    is_linux,
    set_death_signal,
    set_dumpable,
    set_name,
    set_no_new_privs,
)
from procfound.linux.title import (
    get_process_title,
    has_setproctitle,
    set_process_title,
    set_process_title_from_argv,
)
from procfound.pipes import Pipeline, pipe
from procfound.result import CompletedProcess, StageResult
from procfound.run import async_run, run, run_simple
from procfound.services.group import ServiceGroup
from procfound.services.handle import ProcessHandle
from procfound.services.managed import ManagedProcess
from procfound.services.probes import check_probes, refuse_if_answered
from procfound.services.waits import (
    wait_for_http,
    wait_for_path,
    wait_for_port,
    wait_for_process_output,
)
from procfound.shell import async_shell, shell
from procfound.streaming import async_stream, async_stream_batches, stream, stream_batches

__version__ = "0.1.0"

__all__ = [
    "CompletedProcess",
    "DecodeError",
    "ExpectMatch",
    "IgnoredArgumentWarning",
    "Line",
    "ManagedProcess",
    "Pipeline",
    "PlatformError",
    "ProcessError",
    "ProcessHandle",
    "ProcessTimeoutError",
    "ServiceGroup",
    "ShellFeatureError",
    "StageResult",
    "StateError",
    "StopPolicy",
    "ValidationError",
    "async_run",
    "async_shell",
    "async_stream",
    "async_stream_batches",
    "check_probes",
    "exit_error",
    "exit_interrupted",
    "exit_success",
    "get_name",
    "get_process_title",
    "has_prctl",
    "has_setproctitle",
    "is_linux",
    "pipe",
    "refuse_if_answered",
    "run",
    "run_simple",
    "set_death_signal",
    "set_dumpable",
    "set_name",
    "set_no_new_privs",
    "set_process_title",
    "set_process_title_from_argv",
    "shell",
    "stop_policy",
    "stream",
    "stream_batches",
    "wait_for_http",
    "wait_for_path",
    "wait_for_port",
    "wait_for_process_output",
]
