"""The bodies of Docker's API the engine guard lets through, as far as the course goes: the
container create (its Config, HostConfig and NetworkingConfig), the exec create and the exec
start. Each field is allowed with its values, or held to its zero value because it reaches the
host (engine_schema.py says how a body is read and checked)."""

from __future__ import annotations

from .engine_schema import (
    ANY_TEXT,
    OMIT,
    PORT_KEY,
    Struct,
    Zero,
    boolean,
    checked_then_dropped,
    command,
    empty_object,
    false_only,
    integer,
    mapping,
    one_of,
    port_bindings,
    strings,
    text,
)

HOST_FILES = "it mounts the host's files or devices into the container"
HOST_NS = "it shares a namespace with the host or another container"
PRIVILEGE = "it gives the container privileges over the host"
NOT_USED = "the course never sets it"

NAMESPACE = one_of(HOST_NS, "")

RESTART_POLICY = Struct(
    {
        # always / unless-stopped bring a container back after the engine restarts: it would
        # outlive the grading.
        "Name": one_of("would outlive the grading", "", "no", "on-failure"),
        "MaximumRetryCount": integer(0, 10),
    }
)
LOG_CONFIG = Struct(
    {
        "Type": one_of("sends logs elsewhere than the engine's files", "", "json-file", "local"),
        "Config": mapping(
            one_of("is no log option the course allows", "max-size", "max-file"),
            text(r"[0-9]+[kmg]?", "is not a size or a count"),
        ),
    }
)
HEALTHCHECK = Struct(
    {
        "Test": strings(),
        "Interval": integer(0),
        "Timeout": integer(0),
        "StartPeriod": integer(0),
        "StartInterval": integer(0),
        "Retries": integer(0, 100),
    }
)
ENDPOINT = Struct(
    {
        name: Zero("a container joins its network mode's network only")
        for name in [
            "IPAMConfig",
            "Links",
            "Aliases",
            "MacAddress",
            "DriverOpts",
            "GwPriority",
            "NetworkID",
            "EndpointID",
            "Gateway",
            "IPAddress",
            "IPPrefixLen",
            "IPv6Gateway",
            "GlobalIPv6Address",
            "GlobalIPv6PrefixLen",
            "DNSNames",
        ]
    }
)
NETWORKING = Struct(
    {
        "EndpointsConfig": mapping(
            one_of("is no network a course container joins", "default", "bridge", "none"),
            checked_then_dropped(ENDPOINT),
        )
    }
)
CPU_LIST = text(r"[0-9,-]*", "is not a CPU list such as 0-1")

HOST_CONFIG = Struct(
    {
        # Networking: the default bridge, or none.
        "NetworkMode": one_of(
            "is not a network a course container may use", "", "default", "bridge", "none"
        ),
        "PortBindings": port_bindings,
        "PublishAllPorts": boolean,
        "Dns": strings(text(r"[0-9a-fA-F.:]*", "is not an IP address")),
        "DnsOptions": strings(text(r"[A-Za-z0-9_.:-]*")),
        "DnsSearch": strings(text(r"[A-Za-z0-9_.-]*")),
        "ExtraHosts": Zero(f"{NOT_USED} (host-gateway would name the host)"),
        "Links": Zero("links reach into other containers"),
        # Lifecycle and logs.
        "RestartPolicy": RESTART_POLICY,
        "AutoRemove": boolean,
        "LogConfig": LOG_CONFIG,
        "ContainerIDFile": Zero("a file on the host"),
        "ConsoleSize": strings(integer(0, 10000), most=2),
        "Init": boolean,
        "ReadonlyRootfs": boolean,
        "CapDrop": strings(text(r"[A-Za-z_]+", "is not a capability name")),
        "Isolation": one_of("is for Windows engines", "", "default"),
        "Runtime": one_of("only the engine's default runtime", "", "runc"),
        # What reaches the host: only zero values.
        "Binds": Zero(HOST_FILES),
        "Mounts": Zero(HOST_FILES),
        "VolumesFrom": Zero(HOST_FILES),
        "VolumeDriver": Zero(HOST_FILES),
        "Tmpfs": Zero(HOST_FILES),
        "StorageOpt": Zero(HOST_FILES),
        "Devices": Zero(HOST_FILES),
        "DeviceCgroupRules": Zero(HOST_FILES),
        "DeviceRequests": Zero(HOST_FILES),
        "Privileged": false_only(PRIVILEGE),
        "CapAdd": Zero(PRIVILEGE),
        "SecurityOpt": strings(one_of(PRIVILEGE, "no-new-privileges", "no-new-privileges:true")),
        "Sysctls": Zero(PRIVILEGE),
        "MaskedPaths": Zero("an empty list unmasks the host's /proc and /sys", False),
        "ReadonlyPaths": Zero("an empty list makes the host's /proc and /sys writable", False),
        "GroupAdd": Zero(NOT_USED),
        "OomScoreAdj": integer(0, 1000),
        "PidMode": NAMESPACE,
        "IpcMode": one_of(HOST_NS, "", "private", "shareable", "none"),
        "UTSMode": NAMESPACE,
        "UsernsMode": NAMESPACE,
        "CgroupnsMode": one_of(HOST_NS, "", "private"),
        "Cgroup": NAMESPACE,
        "CgroupParent": Zero("it places the container in a cgroup of the host's choosing"),
        # Resources: the guard caps Memory and PidsLimit (engine_policy.cap_resources).
        "Memory": integer(0),
        "MemoryReservation": integer(0),
        "MemorySwap": integer(-1),
        "MemorySwappiness": integer(-1, 100),
        "KernelMemory": Zero(NOT_USED),
        "KernelMemoryTCP": Zero(NOT_USED),
        "OomKillDisable": false_only("an unkillable container could take the host's memory"),
        "PidsLimit": integer(-1),
        "ShmSize": integer(0),
        "NanoCpus": integer(0),
        "CpuShares": integer(0, 262144),
        "CpuPeriod": integer(0, 1_000_000),
        "CpuQuota": integer(-1),
        "CpusetCpus": CPU_LIST,
        "CpusetMems": CPU_LIST,
        "CpuRealtimePeriod": Zero("real-time scheduling can starve the host"),
        "CpuRealtimeRuntime": Zero("real-time scheduling can starve the host"),
        "CpuCount": Zero("for Windows engines"),
        "CpuPercent": Zero("for Windows engines"),
        "BlkioWeight": integer(0, 1000),
        "BlkioWeightDevice": Zero(HOST_FILES),
        "BlkioDeviceReadBps": Zero(HOST_FILES),
        "BlkioDeviceWriteBps": Zero(HOST_FILES),
        "BlkioDeviceReadIOps": Zero(HOST_FILES),
        "BlkioDeviceWriteIOps": Zero(HOST_FILES),
        "IOMaximumIOps": Zero("for Windows engines"),
        "IOMaximumBandwidth": Zero("for Windows engines"),
        "Ulimits": Zero(NOT_USED),
    }
)

LABELS = mapping(ANY_TEXT, text(r"[^\x00]*", "contains a NUL character"))

CONTAINER = Struct(
    {
        "Image": text(r"[A-Za-z0-9][A-Za-z0-9_.:/@-]*", "is not an image reference"),
        "HostConfig": HOST_CONFIG,
        "Labels": LABELS,
        "Hostname": text(r"[A-Za-z0-9.-]*", "is not a host name"),
        "Domainname": text(r"[A-Za-z0-9.-]*", "is not a domain name"),
        "User": text(r"[A-Za-z0-9_.:-]*", "is not a user[:group]"),
        "AttachStdin": boolean,
        "AttachStdout": boolean,
        "AttachStderr": boolean,
        "ExposedPorts": mapping(PORT_KEY, empty_object),
        "Tty": boolean,
        "OpenStdin": boolean,
        "StdinOnce": boolean,
        "Env": strings(),
        "Cmd": command,
        "Healthcheck": HEALTHCHECK,
        "ArgsEscaped": false_only("for Windows engines"),
        "Volumes": Zero("anonymous volumes live on the host's disk and outlive the grading"),
        "WorkingDir": ANY_TEXT,
        "Entrypoint": command,
        "NetworkDisabled": boolean,
        "MacAddress": Zero(NOT_USED),
        "OnBuild": Zero("for builds"),
        "StopSignal": text(r"[A-Z0-9+]*", "is not a signal such as SIGTERM"),
        "StopTimeout": integer(-1, 3600),
        "Shell": strings(),
        # Checked (only the default network, no settings), then left out: the default.
        "NetworkingConfig": checked_then_dropped(NETWORKING),
    }
)

EXEC = Struct(
    {
        "User": text(r"[A-Za-z0-9_.:-]*", "is not a user[:group]"),
        "Privileged": false_only(PRIVILEGE),
        "Tty": boolean,
        "ConsoleSize": strings(integer(0, 10000), most=2),
        "AttachStdin": boolean,
        "AttachStdout": boolean,
        "AttachStderr": boolean,
        "Detach": boolean,
        "DetachKeys": text(r"[a-z0-9,-]*", "is not a key sequence such as ctrl-p,ctrl-q"),
        "Env": strings(),
        "WorkingDir": ANY_TEXT,
        "Cmd": command,
        "Container": lambda value, where: OMIT,  # docker-py sends it; the path says which
    }
)

EXEC_START = Struct(
    {
        "Detach": boolean,
        "Tty": boolean,
        "ConsoleSize": strings(integer(0, 10000), most=2),
    }
)
