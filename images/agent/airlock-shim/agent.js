// Resolves `airlock/agent` inside the agent image to the runtime installed at /opt/airlock.
export * from "/opt/airlock/dist/index.js";
