"""The machinery behind ``helpers.k8s``, one module per concern.

client      the connection, one HTTP request, and the one place client errors are mapped
discovery   kinds, short names and plurals, read from the API server like kubectl does
objects     Object; apply, get, list, delete; namespaces
pods        pod status, the pods table, logs, exec, events
waiting     conditions and ``wait``
workloads   scaling, rolling updates and rollbacks
network     reaching pods and services: fetch, port-forward, the API proxy
metrics     nodes, resource usage
"""
