"""Department submissions (部门报送): files dropped into an inbox, parsed by template, loaded exactly once."""
