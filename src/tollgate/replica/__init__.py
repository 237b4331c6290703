"""`tollgate replica`: a copy of customers, subscriptions, entitlements and usage in a
database of its own, kept in step by webhooks, answering GraphQL and access checks.

It follows its source (a Tollgate server, or the hosted platform Tollgate is compatible
with) only through what any receiver sees: signed webhooks and the REST API. Of the
server's code it uses only the pure entitlement engine (the same decision as the server's
own check), the calendar periods and the database plumbing; the import contracts in
`pyproject.toml` hold it to that."""
