import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { policyJsonSchema } from "../../runner/internal.js";

describe("published JSON Schema", () => {
  it("is draft-07 and matches policies/policy.schema.json (regenerate with npm run schema)", async () => {
    const schema = policyJsonSchema();
    expect(schema.$schema).toBe("http://json-schema.org/draft-07/schema#");
    const published = JSON.parse(
      await readFile(join(import.meta.dirname, "../../policies/policy.schema.json"), "utf8"),
    );
    expect(published).toEqual(schema);
  });

  it("forbids unknown keys and describes every top-level field", () => {
    const schema = policyJsonSchema() as {
      additionalProperties: boolean;
      required: string[];
      properties: Record<string, { description?: string }>;
    };
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(["name"]);
    for (const [key, prop] of Object.entries(schema.properties)) expect(prop.description, key).toBeTruthy();
  });
});
