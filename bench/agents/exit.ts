/** Does nothing: measures pure start-up and tear-down. */
export {};
