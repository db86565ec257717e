/**
 * What the unit tests' fake engines share: no daemon behind them, a demux that is a plain pipe, and
 * no lookup of containers by ID. What their containers do is each test's own (createContainer).
 */
import * as tar from "tar-stream";
import type { Engine } from "../../runner/backends/docker/engine/engine.js";

/** What a fake container's /output holds: an empty archive (the real one is the integration suite's). */
export async function emptyArchive(): Promise<NodeJS.ReadableStream> {
  const pack = tar.pack();
  pack.finalize();
  return pack as unknown as NodeJS.ReadableStream;
}

export function fakeEngineWith(createContainer: Engine["createContainer"], more: Pick<Engine, "watch"> = {}): Engine {
  return {
    address: "fake",
    ping: async () => {},
    demux: (stream, stdout) => void stream.pipe(stdout),
    container: () => {
      throw new Error("not used");
    },
    createContainer,
    ...more,
  };
}
