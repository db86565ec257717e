/** The languages an agent can be written in. Kept apart from their implementations so the policy schema can name them. */
export const LANGUAGE_NAMES = ["node", "python"] as const;
export type LanguageName = (typeof LANGUAGE_NAMES)[number];
