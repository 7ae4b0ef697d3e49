"""The machinery behind ``helpers.docker``, one module per concern.

engine      the connection, names, and the one place docker-py's errors are mapped
containers  run, ps, inspect, exec, logs, stop, rm, cleanup
images      build, image, images
stats       CPU and memory of containers
"""
