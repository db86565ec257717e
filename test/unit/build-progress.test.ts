/** Image builds on the terminal: one line per build, redrawn in place on a TTY, start and end elsewhere. */
import { describe, expect, it } from "vitest";
import { buildProgress } from "../../runner/cli/build-progress.js";

// Plain text: colours are the style module's business, not this one's.
process.env.NO_COLOR = "1";

function fakeStream(isTTY: boolean) {
  let text = "";
  const stream = { isTTY, columns: 200, write: (s: string) => ((text += s), true) } as unknown as NodeJS.WriteStream;
  return { stream, text: () => text };
}

describe("build progress", () => {
  it("in a log: a line when a build starts and one when it is done, with its time, and no engine steps", () => {
    const { stream, text } = fakeStream(false);
    let now = 1000;
    const p = buildProgress(stream, () => now);
    p.line("a |", "building airlock/agent:123 (about a minute)");
    p.line("a |", "Step 1/12 : FROM base");
    p.line("a |", " ---> 1234");
    now += 41_000;
    p.line("a |", "Successfully tagged airlock/agent:123");
    expect(text()).toBe("a |   building airlock/agent:123\na |   built airlock/agent:123 in 41 s\n");
  });

  it("on a terminal: one line redrawn in place with the step and the time, cleared around other output", () => {
    const { stream, text } = fakeStream(true);
    let now = 0;
    const p = buildProgress(stream, () => now);
    p.line("a |", "building airlock/agent:123");
    now = 5000;
    p.line("a |", "Step 7/12 : RUN x");
    expect(text().split("\r\u001b[2K").pop()).toBe("a |   building airlock/agent:123 · step 7/12 · 5 s");
    p.around(() => stream.write("a | hello\n"));
    expect(text()).toContain("\r\u001b[2Ka | hello\n\r\u001b[2Ka |   building");
    p.done("a |");
    expect(text().endsWith("built airlock/agent:123 in 5 s\n")).toBe(true);
    expect(text()).not.toContain("Step 7/12");
  });
});
