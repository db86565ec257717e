/** npm packages a policy lists, as `name@version`. They are installed when the image is built. */
export interface PackageSpec {
  name: string;
  version: string;
  /** `name@version`, as npm install takes it. */
  spec: string;
}

const NAME = /^(@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/;
// semver versions and ranges only: no URLs, git, file: or tarball specs (they bypass the registry
// and its CA settings, and file: would read the host's disk at build time).
const VERSION = /^[0-9A-Za-z.^~<>=|*+\- ]+$/;

export function packageProblem(raw: string): { message: string; fix: string } | undefined {
  const text = raw.trim();
  const at = text.lastIndexOf("@");
  if (at <= 0) {
    return {
      message: `package "${text}" has no version`,
      fix: `pin it, e.g. ${text || "ioredis"}@1.2.3 (see npm view ${text || "NAME"} version)`,
    };
  }
  const name = text.slice(0, at);
  const version = text.slice(at + 1).trim();
  if (!NAME.test(name))
    return {
      message: `"${name}" is not a valid npm package name`,
      fix: "use the name as published on npm, in lower case",
    };
  if (version === "") return { message: `package "${name}" has an empty version`, fix: `pin it, e.g. ${name}@1.2.3` };
  if (/[:/#]/.test(version) || !VERSION.test(version)) {
    return {
      message: `"${version}" is not a registry version of ${name}`,
      fix: "use a version or semver range from the npm registry; URLs, git and file: specs are not allowed",
    };
  }
  return undefined;
}

export function parsePackage(raw: string): PackageSpec {
  const problem = packageProblem(raw);
  if (problem) throw new TypeError(problem.message);
  const text = raw.trim();
  const at = text.lastIndexOf("@");
  const name = text.slice(0, at);
  const version = text.slice(at + 1).trim();
  return { name, version, spec: `${name}@${version}` };
}
