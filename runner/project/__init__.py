"""The MLproject: safe YAML, the frozen spec records, typed parameters, command templates."""
