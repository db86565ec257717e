/** Messages on the bus are JSON; an optional schema (anything with parse(), e.g. zod) checks both ends. */
import { MessageValidationError } from "./errors.js";

export interface Schema<T> {
  parse(value: unknown): T;
}

export interface MessageOptions<T> {
  /** Validates every message sent and received; a zod schema works as is. */
  schema?: Schema<T>;
}

/** Validate a message against its schema (when there is one). */
export function check<T>(value: unknown, schema: Schema<T> | undefined, where: string): T {
  if (!schema) return value as T;
  try {
    return schema.parse(value);
  } catch (err) {
    throw new MessageValidationError(`${where}: message does not match its schema: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

export function encode<T>(value: T, schema: Schema<T> | undefined, where: string): string {
  return JSON.stringify(check(value, schema, where));
}

export function decode<T>(raw: string | Buffer, schema: Schema<T> | undefined, where: string): T {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString());
  } catch (err) {
    throw new MessageValidationError(`${where}: message is not JSON: ${raw.toString().slice(0, 80)}`, { cause: err });
  }
  return check(value, schema, where);
}
