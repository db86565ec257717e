import { readFile, writeFile } from "node:fs/promises";
import type { Command } from "commander";

export async function schemaText(kind: "policy" | "run" = "policy"): Promise<string> {
  const schema =
    kind === "run"
      ? (await import("../../group/run-file.js")).runFileJsonSchema()
      : (await import("../../policy/index.js")).policyJsonSchema();
  return `${JSON.stringify(schema, null, 2)}\n`;
}

export function registerSchema(program: Command): void {
  program
    .command("schema")
    .description("print the policy (or run file) JSON Schema (draft-07), generated from the validator")
    .option("--run", "the run file schema instead of the policy schema")
    .option("--write <file>", "write it to a file instead")
    .option("--check <file>", "exit 1 if the file differs from the generated schema (drift check for CI)")
    .addHelpText(
      "after",
      "\nPoint editors at it with a first line in each policy:\n  # yaml-language-server: $schema=./policy.schema.json",
    )
    .action(async (opts: { write?: string; check?: string; run?: boolean }) => {
      const text = await schemaText(opts.run ? "run" : "policy");
      if (opts.check) {
        // A missing file is out of date ("" differs from any schema).
        const current = await readFile(opts.check, "utf8").catch(() => "");
        if (current !== text) {
          process.stderr.write(
            `${opts.check} is out of date with the policy validator; regenerate it: npm run schema\n`,
          );
          process.exitCode = 1;
        } else process.stdout.write(`${opts.check} is up to date\n`);
        return;
      }
      if (opts.write) await writeFile(opts.write, text);
      else process.stdout.write(text);
    });
}
