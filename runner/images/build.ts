/**
 * Running one `docker build` through the engine API and following its progress.
 */
import type Docker from "dockerode";
import { ImageBuildError } from "../errors.js";
import { tarStream, type ContextFile } from "./context.js";

export interface BuildRequest {
  tag: string;
  files: ContextFile[];
  dockerfile: string;
  buildArgs?: Record<string, string>;
  labels?: Record<string, string>;
  onProgress?: (line: string) => void;
}

interface BuildMessage {
  stream?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string };
}

export async function buildImage(docker: Docker, req: BuildRequest): Promise<string> {
  const log: string[] = [];
  let stream: NodeJS.ReadableStream;
  try {
    stream = await docker.buildImage(tarStream(req.files), {
      t: req.tag,
      dockerfile: req.dockerfile,
      buildargs: req.buildArgs ?? {},
      labels: req.labels ?? {},
      rm: true,
      forcerm: true,
      pull: false,
    } as Docker.ImageBuildOptions);
  } catch (err) {
    throw new ImageBuildError(req.tag, (err as Error).message, "");
  }
  let imageId: string | undefined;
  let failure: string | undefined;
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null) => (err ? reject(err) : resolve()),
      (msg: BuildMessage) => {
        if (msg.aux?.ID) imageId = msg.aux.ID;
        const text = msg.stream ?? msg.status;
        if (text) {
          for (const line of text.split("\n")) {
            if (!line.trim()) continue;
            log.push(line);
            if (log.length > 400) log.shift();
            req.onProgress?.(line);
          }
        }
        if (msg.error || msg.errorDetail) failure = msg.errorDetail?.message ?? msg.error;
      },
    );
  }).catch((err: Error) => {
    failure ??= err.message;
  });
  if (failure) {
    throw new ImageBuildError(req.tag, failure, log.join("\n"), hintFor(failure, log));
  }
  if (!imageId) imageId = (await docker.getImage(req.tag).inspect()).Id;
  return imageId;
}

function hintFor(failure: string, log: string[]): string | undefined {
  const text = `${failure}\n${log.slice(-30).join("\n")}`;
  if (/E404|404 Not Found|No matching version|ETARGET/i.test(text))
    return "check the package names and versions in the policy's packages (npm view NAME versions)";
  if (/SELF_SIGNED|UNABLE_TO_GET_ISSUER|unable to verify|certificate/i.test(text)) {
    return "the registry's TLS certificate is not trusted inside the build: set NODE_EXTRA_CA_CERTS (or SSL_CERT_FILE) to your CA bundle before running airlock";
  }
  if (/ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|network/i.test(text)) {
    return "the build could not reach the npm registry: check your registry settings (npm config get registry) and proxy variables (HTTPS_PROXY)";
  }
  return undefined;
}
