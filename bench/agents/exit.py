"""Does nothing and exits: what a Python run costs besides the agent's own work."""
