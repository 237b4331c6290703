"""Stigg's SDK-facing API: the GraphQL schema its JavaScript SDKs send documents to, the live
socket they subscribe on, and the edge JSON files shaped like that GraphQL's answers."""
