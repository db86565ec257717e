/** The Node agent image plus a policy's npm packages (/opt/agent/node_modules), as a cached layer. */
import type Docker from "dockerode";
import type { ContextFile } from "../../images/context.js";
import { caFile, type BuiltImage, type Progress } from "../../images/images.js";
import type { ImageBuilds } from "../../images/builds.js";
import { ensurePackagesLayer } from "../../images/packages-layer.js";
import { registrySettings } from "../../images/registry-settings.js";
import type { PackageSpec } from "../../policy/package-spec.js";

export function ensureNpmPackagesImage(
  docker: Docker,
  agentImage: BuiltImage,
  packages: PackageSpec[],
  progress: Progress = () => {},
  builds?: ImageBuilds,
): Promise<BuiltImage> {
  if (packages.length === 0) return Promise.resolve(agentImage);
  const sorted = [...packages].sort((a, b) => a.name.localeCompare(b.name));
  const settings = registrySettings();
  const manifest = {
    name: "airlock-agent-packages",
    private: true,
    dependencies: Object.fromEntries(sorted.map((p) => [p.name, p.version])),
  };
  const dockerfile = [
    // FROM the recorded ID, not the tag: the layer is built on what airlock built.
    `FROM ${agentImage.id} AS deps`,
    "USER root",
    "WORKDIR /opt/agent",
    "COPY airlock-ca.pem /tmp/airlock-ca.pem",
    "COPY package.json ./package.json",
    `ARG NPM_CONFIG_REGISTRY=${settings.registry}`,
    "ENV NPM_CONFIG_UPDATE_NOTIFIER=false",
    "RUN if [ -s /tmp/airlock-ca.pem ]; then export NODE_EXTRA_CA_CERTS=/tmp/airlock-ca.pem; fi; \\",
    "    npm install --omit=dev --no-audit --no-fund --no-package-lock --loglevel=error",
    `FROM ${agentImage.id}`,
    // Only the installed packages leave the install stage: nothing an install script did elsewhere.
    "COPY --from=deps /opt/agent/node_modules /opt/agent/node_modules",
    "",
  ].join("\n");
  const files: ContextFile[] = [
    { name: "Dockerfile.packages", content: Buffer.from(dockerfile) },
    { name: "package.json", content: Buffer.from(JSON.stringify(manifest, null, 2)) },
    caFile(settings),
  ];
  return ensurePackagesLayer(
    docker,
    agentImage,
    {
      repo: "airlock/agent-packages",
      kind: "packages-image",
      key: sorted.map((p) => p.spec).join(","),
      files,
      dockerfile: "Dockerfile.packages",
      buildArgs: { NPM_CONFIG_REGISTRY: settings.registry, ...settings.proxyArgs },
      describe: sorted.map((p) => p.spec).join(" "),
    },
    progress,
    builds,
  );
}
