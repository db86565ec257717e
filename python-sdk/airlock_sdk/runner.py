"""A long-lived airlock runner for many run_agent calls from one Python process: one `airlock
sdk-run --serve` process, which keeps its warm pool (sandboxes started before they are needed) and
its engine connection between runs. The caller owns it and closes it (`with Runner(pool=4) as r:`);
run_agent may be called from several threads at once, and the runs overlap."""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import Future
from typing import Any, Dict, List, Optional

from .driver import answer_of, find_cli, stderr_target
from .errors import AirlockError
from .policy import Policy
from .request import Agent, build_request
from .result import AgentResult

MAX_LINE_BYTES = 64 * 1024 * 1024


class Runner:
    def __init__(self, pool: int = 0, quiet: bool = False) -> None:
        command: List[str] = [*find_cli(), "sdk-run", "--serve", "--pool", str(pool), *(["--quiet"] if quiet else [])]
        self._proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr_target(), bufsize=0
        )
        self._lock = threading.Lock()
        self._waiting: Dict[int, "Future[Dict[str, Any]]"] = {}
        self._next = 0
        self._closed = False
        self._reader = threading.Thread(target=self._read, name="airlock-runner", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for raw in iter(lambda: self._proc.stdout.readline(MAX_LINE_BYTES), b""):  # type: ignore[union-attr]
            try:
                value = json.loads(raw)
            except ValueError:
                continue  # not an answer (a line cut at the limit): its run is answered as ended below
            with self._lock:
                future = self._waiting.pop(value.get("id"), None)
            if future is not None:
                try:
                    future.set_result(answer_of(value))
                except AirlockError as err:
                    future.set_exception(err)
        with self._lock:
            left, self._waiting = self._waiting, {}
        for future in left.values():
            future.set_exception(AirlockError(f"airlock's runner ended (exit {self._proc.wait()}) before the run did", "RUNNER_ENDED"))

    def run_agent(
        self,
        agent: Agent,
        working_dir: Optional[str] = None,
        host_output_path: str = "./output",
        policy: Optional[Policy] = None,
    ) -> AgentResult:
        """As airlock_sdk.run_agent, on this runner (its warm pool, its engine connection)."""
        folder = tempfile.mkdtemp(prefix="airlock-sdk-")
        try:
            request = build_request(agent, folder, working_dir, host_output_path, policy)
            future: "Future[Dict[str, Any]]" = Future()
            with self._lock:
                if self._closed:
                    raise AirlockError("this Runner is closed", "RUNNER_CLOSED", "create a new Runner")
                self._next += 1
                run_id = self._next
                self._waiting[run_id] = future
                assert self._proc.stdin is not None
                try:
                    self._proc.stdin.write(json.dumps({"id": run_id, "request": request}).encode() + b"\n")
                except OSError as err:
                    del self._waiting[run_id]
                    raise AirlockError(f"airlock's runner has ended ({err})", "RUNNER_ENDED", "create a new Runner") from err
            return AgentResult.from_airlock(future.result())
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        """Wait for the runs under way, then end the runner (it removes its pooled sandboxes). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._proc.stdin is not None:
                try:
                    self._proc.stdin.close()
                except OSError:
                    pass  # the runner has ended already: nothing left to tell it
        self._reader.join()
        self._proc.wait()

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
