"""What run_agent returns: the SDK's fields (exit_code, stdout, stderr, …) and airlock's (status,
the output files, every refusal with the line that would allow it, the result file)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional


@dataclass
class AgentResult:
    exit_code: Optional[int]
    stdout: str
    stderr: str
    output_path: str
    duration_seconds: float
    timed_out: bool
    #: airlock's: succeeded, failed, timed_out, oom, cancelled or error.
    status: str
    name: str
    #: Files the agent left in output_path (relative paths).
    outputs: List[str] = field(default_factory=list)
    #: Every refusal of the run (gate, HTTPS names, brokers): what, how often, the line to add.
    denials: List[Dict[str, Any]] = field(default_factory=list)
    error: Optional[str] = None
    result_file: Optional[str] = None
    denials_file: Optional[str] = None
    #: What the front end chose (pins, rights it found or lacked), one line each.
    notes: List[str] = field(default_factory=list)
    #: The whole result as airlock wrote it.
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def success(self) -> bool:
        return self.status == "succeeded"

    @classmethod
    def from_airlock(cls, raw: Dict[str, Any]) -> "AgentResult":
        return cls(
            exit_code=raw.get("exitCode"),
            stdout=raw.get("stdout", ""),
            stderr=raw.get("stderr", ""),
            output_path=raw.get("outputDir", ""),
            duration_seconds=round(raw.get("durationMs", 0) / 1000, 3),
            timed_out=raw.get("status") == "timed_out",
            status=raw.get("status", "error"),
            name=raw.get("name", ""),
            outputs=list(raw.get("outputFiles", [])),
            denials=list(raw.get("refusals", [])),
            error=raw.get("error"),
            result_file=raw.get("resultFile"),
            denials_file=raw.get("refusalsFile"),
            notes=list((raw.get("sdk") or {}).get("notes", [])),
            raw=raw,
        )
