"""The AI Hub adapter: the REST client, its request and result types, its errors and the policy.

The only httpx user. Imports only the core (`watcher.errors`, the package version).
"""
