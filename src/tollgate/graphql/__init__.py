"""The surface Stigg's JavaScript SDKs call: today the edge JSON files (`edge.py`), each
shaped like the `data` of the GraphQL query it stands for (`shapes.py`); the GraphQL
endpoint and its live socket are to be built here on the same shapes."""
