/**
 * What the unit tests' fake engines share: no daemon behind them, a demux that is a plain pipe, and
 * no lookup of containers by ID. What their containers do is each test's own (createContainer).
 */
import type { Engine } from "../../runner/docker/engine.js";

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
