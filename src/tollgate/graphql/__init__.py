"""The surface Stigg's JavaScript SDKs call: `POST /graphql` (`api.py`, with the resolvers of
`operations.py` and `pages.py`), the live socket (`live.py`), and the edge JSON files
(`edge.py`), each shaped like the `data` of the GraphQL query it stands for (`shapes.py`,
`catalog.py`)."""
