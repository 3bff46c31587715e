"""The native API's routes, one module per area: jobs, account, library."""
