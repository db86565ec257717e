export { loadPolicy, parsePolicy, definePolicy, type Policy } from "./policy.js";
export { policySchema, policyJsonSchema, type PolicyInput, DEFAULTS } from "./schema.js";
export { parseEndpoint, type Endpoint, type EndpointKind } from "./endpoint.js";
export type { PackageSpec } from "./package-spec.js";
export type { PipRequirement } from "./pip-spec.js";
export { parseHttpsService, type HttpsService } from "./https-service.js";
