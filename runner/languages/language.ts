/**
 * What a language an agent can be written in brings: how its agent file is checked and put into the
 * container, the image it runs in (built by airlock, with the policy's packages for it), and the
 * runtime's command line there. A run asks for one (runtime:, or the file's extension) and calls
 * these in order; nothing else in the run depends on the language.
 */
import type Docker from "dockerode";
import type { ImageBuilds } from "../images/builds.js";
import type { BuiltImage, ImageSet, Progress } from "../images/images.js";
import type { Policy } from "../policy/index.js";
import type { LanguageName } from "./names.js";

export interface LanguageImageContext {
  docker: Docker;
  /** airlock's base, gate and Node agent images (already built). */
  images: ImageSet;
  progress: Progress;
  /** The engine's images asked for so far (its Docker backend's): each is looked up once. */
  builds?: ImageBuilds;
}

/** An agent put into its bundle folder: where it starts, and what is left to check once the image is there. */
export interface StagedAgent {
  /** The entry's path in the container. */
  entry: string;
  /** Checks that need the image (e.g. compiling with its interpreter); run before the agent's container is created. */
  check?(ctx: LanguageImageContext, image: BuiltImage): Promise<void>;
}

export interface AgentLanguage {
  readonly name: LanguageName;
  /** For messages: "TypeScript/JavaScript", "Python". */
  readonly title: string;
  /** Agent files of this language end with one of these. */
  readonly extensions: readonly string[];
  /** Check the agent and put what runs into `bundleDir` (mounted at /opt/agent/run). */
  stage(agentFile: string, policy: Policy, bundleDir: string, options?: { typecheck?: boolean }): Promise<StagedAgent>;
  /** The language's image with the policy's packages for it (built once, cached by their hash). */
  image(ctx: LanguageImageContext, policy: Policy): Promise<BuiltImage>;
  /** The runtime's command line in the image; the entry follows it. */
  readonly runtimeArgv: readonly string[];
  /**
   * The runtime a sandbox starts on standby, before its agent is known, so the agent's first line
   * comes a few ms after the claim: its command line in the image, and the variables the runtime
   * reads as it starts (a run that sets one of them gets a fresh process instead).
   */
  readonly standby?: { readonly argv: readonly string[]; readonly startupVariables: RegExp };
  /** What a failed run's stderr means, with the fix (e.g. a module the policy does not install). */
  explainFailure?(stderr: string, policy: Policy): string | undefined;
  /** Whether the policy lists packages for this language. */
  hasPackages(policy: Policy): boolean;
}
