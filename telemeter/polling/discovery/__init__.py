"""Resource discoverers of the polling agent."""
