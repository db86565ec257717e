/**
 * The agent's stdout and stderr: split into lines, control lines from the runtime taken out,
 * each line handed to a listener as it arrives, and the most recent `capBytes` kept for the result,
 * so an agent that prints without end cannot grow the runner's memory.
 */
import { Writable } from "node:stream";
import { decodeControl, type ControlMessage } from "../../agent-runtime/protocol.js";

export type StreamName = "stdout" | "stderr";

const MAX_LINE = 64 * 1024;

export class LogCapture {
  private readonly lines: string[] = [];
  private bytes = 0;
  private partial = "";
  /** Bytes dropped from the front to stay within the cap. */
  droppedBytes = 0;

  constructor(
    readonly stream: StreamName,
    private readonly capBytes: number,
    private readonly onLine: (stream: StreamName, line: string) => void,
    private readonly onControl: (message: ControlMessage) => void,
    /** Takes lines that are not the agent's (the gate's report); true when it took the line. */
    private readonly intercept?: (line: string, stream: StreamName) => boolean,
    /** Takes secrets out of a line before anyone sees it. */
    private readonly redact: (line: string) => string = (l) => l,
  ) {}

  writable(): Writable {
    return new Writable({
      decodeStrings: true,
      write: (chunk: Buffer, _enc, done) => {
        this.push(chunk.toString("utf8"));
        done();
      },
    });
  }

  push(text: string): void {
    let data = this.partial + text;
    let nl: number;
    while ((nl = data.indexOf("\n")) >= 0) {
      this.line(data.slice(0, nl));
      data = data.slice(nl + 1);
    }
    while (data.length > MAX_LINE) {
      this.line(data.slice(0, MAX_LINE));
      data = data.slice(MAX_LINE);
    }
    this.partial = data;
  }

  /** Flush a last line that had no newline. */
  end(): void {
    if (this.partial) this.line(this.partial);
    this.partial = "";
  }

  private line(raw: string): void {
    const line = this.redact(raw.endsWith("\r") ? raw.slice(0, -1) : raw);
    if (this.intercept?.(line, this.stream)) return;
    if (this.stream === "stdout") {
      const control = decodeControl(line);
      if (control) {
        this.onControl(control);
        return;
      }
    }
    this.onLine(this.stream, line);
    this.lines.push(line);
    this.bytes += line.length + 1;
    while (this.bytes > this.capBytes && this.lines.length > 1) {
      const dropped = this.lines.shift()!;
      this.bytes -= dropped.length + 1;
      this.droppedBytes += dropped.length + 1;
    }
  }

  text(): string {
    const head = this.droppedBytes ? `[airlock: ${this.droppedBytes} earlier bytes of ${this.stream} dropped]\n` : "";
    return head + this.lines.join("\n") + (this.lines.length ? "\n" : "");
  }
}
